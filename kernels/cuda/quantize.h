// MuPPET's dynamic fixed-point quantiser on the GPU: for the same tensor, word length, rounding,
// seed and stream, the same exponent, codes and saturation count as kernels/cpu/quantize.h
// (the per-element arithmetic is kernels/common/fixed_point_element.h, compiled for both). Three
// kernels on one stream, no host round trip between them: the tensor's range, its exponent, its
// codes; the caller waits once, for the result.
#ifndef MUPPET_KERNELS_CUDA_QUANTIZE_H_
#define MUPPET_KERNELS_CUDA_QUANTIZE_H_

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/statusor.h"

namespace muppet::cuda {

struct QuantizeSpec {
  // [2, 8] for int8 codes, [2, 16] for int16, [2, 12] for FP16 (whose 11-bit significand holds
  // every such code exactly, for the FP16 tensor cores).
  int word_length = 8;
  bool stochastic = true;
  uint64_t seed = 0;
  uint64_t stream = 0;  // With `seed`, selects the stochastic-rounding bits.
};

struct QuantizeResult {
  int exponent = 0;  // s: code[i] ~= x[i] * 2^s.
  int64_t saturations = 0;
};

// Device scratch for one quantisation at a time (the range partials and the result). Not
// thread-safe; one per stream.
class QuantizeWorkspace {
 public:
  // INTERNAL naming the CUDA call when the device memory cannot be had.
  static absl::StatusOr<QuantizeWorkspace> Create();
  ~QuantizeWorkspace();
  QuantizeWorkspace(QuantizeWorkspace&& other) noexcept;
  QuantizeWorkspace& operator=(QuantizeWorkspace&&) = delete;
  QuantizeWorkspace(const QuantizeWorkspace&) = delete;

  struct State;         // Device-side result of one quantisation.
  struct RangePartial;  // One block's share of the range.

 private:
  QuantizeWorkspace(State* state, RangePartial* partials, int max_blocks, int sm_count)
      : state_(state), partials_(partials), max_blocks_(max_blocks), sm_count_(sm_count) {}
  friend absl::StatusOr<QuantizeResult> Quantize(const float*, int64_t, const QuantizeSpec&,
                                                 int8_t*, QuantizeWorkspace&, cudaStream_t);
  friend absl::StatusOr<QuantizeResult> Quantize(const float*, int64_t, const QuantizeSpec&,
                                                 int16_t*, QuantizeWorkspace&, cudaStream_t);
  friend absl::StatusOr<QuantizeResult> Quantize(const float*, int64_t, const QuantizeSpec&,
                                                 __half*, QuantizeWorkspace&, cudaStream_t);
  friend absl::StatusOr<QuantizeResult> RoundToGrid(float*, int64_t, const QuantizeSpec&, int16_t*,
                                                    QuantizeWorkspace&, cudaStream_t);

  State* state_ = nullptr;
  RangePartial* partials_ = nullptr;
  int max_blocks_ = 0;
  int sm_count_ = 0;
};

// Quantises the device tensor x[0, n) into the device codes `codes` (n of them) on `stream`, and
// waits for the result. INVALID_ARGUMENT for an empty tensor, a word length out of range for the
// code type, or an element that is not finite (naming the first such index and its value, as the
// CPU quantiser does); INTERNAL naming the CUDA call that failed.
absl::StatusOr<QuantizeResult> Quantize(const float* x, int64_t n, const QuantizeSpec& spec,
                                        int8_t* codes, QuantizeWorkspace& workspace,
                                        cudaStream_t stream);
absl::StatusOr<QuantizeResult> Quantize(const float* x, int64_t n, const QuantizeSpec& spec,
                                        int16_t* codes, QuantizeWorkspace& workspace,
                                        cudaStream_t stream);
// The same codes as FP16 values (exact), for the FP16 tensor-core GEMM (gemm_f16.h).
absl::StatusOr<QuantizeResult> Quantize(const float* x, int64_t n, const QuantizeSpec& spec,
                                        __half* codes, QuantizeWorkspace& workspace,
                                        cudaStream_t stream);

// x[0, n) = codes * 2^-exponent, as kernels/cpu's Dequantize computes it (the same bits), for the
// grid route's operands. Enqueued on `stream`; INTERNAL naming the launch that failed.
absl::Status Dequantize(const int8_t* codes, int64_t n, int exponent, float* x,
                        cudaStream_t stream);
absl::Status Dequantize(const __half* codes, int64_t n, int exponent, float* x,
                        cudaStream_t stream);
absl::Status Dequantize(const int16_t* codes, int64_t n, int exponent, float* x,
                        cudaStream_t stream);

// Replaces the device tensor x[0, n) by its value on the fixed-point grid, code * 2^-s, as
// kernels/cpu's RoundToFixedPoint does for the same spec (the same bits); `codes` is device
// scratch for n int16 codes. Waits for the result. Errors as Quantize's.
absl::StatusOr<QuantizeResult> RoundToGrid(float* x, int64_t n, const QuantizeSpec& spec,
                                           int16_t* codes, QuantizeWorkspace& workspace,
                                           cudaStream_t stream);

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_QUANTIZE_H_
