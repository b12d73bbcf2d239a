// The one definition of "FP32" in muppet's numbers: a precision of 32 bits (spec.proto's
// precision fields, EpochMetrics.precision_bits, the policies' decisions). Every other value a
// precision takes, 2 to 16, is a dynamic fixed-point word length.
#ifndef MUPPET_PROTO_PRECISION_H_
#define MUPPET_PROTO_PRECISION_H_

namespace muppet {

inline constexpr int kFp32Bits = 32;

}  // namespace muppet

#endif  // MUPPET_PROTO_PRECISION_H_
