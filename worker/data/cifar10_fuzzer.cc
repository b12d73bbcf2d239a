// Fuzzes the CIFAR-10 reader: the input is each of the six batch files.
#include <cstdint>

#include "base/fuzz_files.h"
#include "worker/data/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                           "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}) {
    muppet::WriteFuzzFile(name, data, size);
  }
  absl::StatusOr<muppet::TrainTest> d = muppet::ReadCifar10(muppet::FuzzDirectory());
  if (d.ok()) {
    for (int32_t label : d->train.labels) {
      if (label < 0 || label >= 10) std::abort();
    }
  }
  return 0;
}
