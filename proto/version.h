// The muppet version every binary reports (RegisterWorker, muppet_build_info, --version).
#ifndef MUPPET_PROTO_VERSION_H_
#define MUPPET_PROTO_VERSION_H_

namespace muppet {

inline constexpr char kVersion[] = "0.6.0";

}  // namespace muppet

#endif  // MUPPET_PROTO_VERSION_H_
