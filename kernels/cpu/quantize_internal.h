// The per-instruction-set implementations behind quantize.h. Each processes whole blocks of
// kBlock elements and leaves the tail to the scalar code, which computes the same function.
#ifndef MUPPET_KERNELS_CPU_QUANTIZE_INTERNAL_H_
#define MUPPET_KERNELS_CPU_QUANTIZE_INTERNAL_H_

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/common/fixed_point_element.h"
#include "kernels/cpu/quantize.h"

namespace muppet::kernels::internal {

inline constexpr int64_t kBlock = 128;  // Elements sharing one vector of Philox counters.

// Quantiser parameters shared by every implementation; QuantizeElement (fixed_point_element.h)
// is the reference every vector path must match bit for bit.
using ::muppet::kernels::QuantizeParams;

QuantizeParams MakeParams(const QuantizeOptions& options);

// Min/max over [0, n) with a non-finite flag; n a multiple of 16 (AVX-512) or 8 (AVX2).
void MinMaxAvx512(const float* x, int64_t n, float* min, float* max, bool* non_finite);
void MinMaxAvx2(const float* x, int64_t n, float* min, float* max, bool* non_finite);

// Quantise blocks [first, last) of a tensor, whose elements first * kBlock to last * kBlock are
// x[0..] and go to out[0..]; return the saturation count.
int64_t QuantizeBlocksAvx512(const float* x, int64_t first, int64_t last, const QuantizeParams& p,
                             int8_t* out);
int64_t QuantizeBlocksAvx512(const float* x, int64_t first, int64_t last, const QuantizeParams& p,
                             int16_t* out);
int64_t QuantizeBlocksAvx2(const float* x, int64_t first, int64_t last, const QuantizeParams& p,
                           int8_t* out);
int64_t QuantizeBlocksAvx2(const float* x, int64_t first, int64_t last, const QuantizeParams& p,
                           int16_t* out);

// MinMax's errors: an empty tensor, and element `index` of the tensor, `value`, not finite.
absl::Status EmptyTensorError();
absl::Status NonFiniteError(int64_t index, float value);

// On the calling thread: the min/max of x[0, n) into *min and *max (which it lowers and
// raises), and whether an element is not finite.
void ScanRange(const float* x, int64_t n, Isa isa, float* min, float* max, bool* non_finite);

// On the calling thread: codes of x[0, n), elements first_index onwards of a tensor
// (first_index a multiple of kBlock); returns the saturation count.
int64_t QuantizeSpan(const float* x, int64_t n, int64_t first_index, const QuantizeParams& p,
                     Isa isa, int8_t* out);
int64_t QuantizeSpan(const float* x, int64_t n, int64_t first_index, const QuantizeParams& p,
                     Isa isa, int16_t* out);

}  // namespace muppet::kernels::internal

#endif  // MUPPET_KERNELS_CPU_QUANTIZE_INTERNAL_H_
