// Fuzzes JobSpec validation with the specs a client can send: any bytes that parse as a JobSpec
// are defaulted and validated without a crash; defaults are idempotent and a valid spec stays
// valid with them applied again.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "proto/spec_validation.h"

namespace {

// The bytes of `spec` with its maps in key order. Plain serialisation follows a map's iteration
// order, which a copy need not share (labels_map_order.pb in the corpus), and comparing as
// messages would call a NaN unequal to itself (nan_alpha.pb).
std::string Bytes(const muppet::v1::JobSpec& spec) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    spec.SerializeToCodedStream(&coded);
  }
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  muppet::v1::JobSpec spec;
  if (!spec.ParseFromArray(data, static_cast<int>(size))) return 0;
  (void)muppet::ValidateJobSpec(spec);
  muppet::ApplyJobSpecDefaults(spec);
  const bool valid = muppet::ValidateJobSpec(spec).ok();
  muppet::v1::JobSpec again = spec;
  muppet::ApplyJobSpecDefaults(again);
  if (Bytes(again) != Bytes(spec)) std::abort();
  if (valid && !muppet::ValidateJobSpec(again).ok()) std::abort();
  return 0;
}
