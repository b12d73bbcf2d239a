// Fuzzes the checkpoint reader: any file gives a checkpoint whose sections are as long as its
// "run" section says, or an error, never a crash.
#include <cstdint>

#include "base/fuzz_files.h"
#include "worker/train/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = muppet::WriteFuzzFile("checkpoint.muppet", data, size);
  absl::StatusOr<muppet::TrainingCheckpoint> c = muppet::ReadTrainingCheckpoint(path);
  if (c.ok() && c->momentum.size() != c->parameters.size()) std::abort();
  return 0;
}
