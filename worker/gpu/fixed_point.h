// A GPU layer's fixed-point side, bound to its CPU layer's precision (worker/nn/precision.h):
// operands quantised on the device with the rounding bits the CPU layer would draw, into codes
// of the type the tensor cores take at the word length (int8 up to 8 bits, FP16 for 9-12, int16
// for 13-16), and tensors rounded onto the grid as the CPU layer's Round does. Saturations are
// counted into the model's precision, as the CPU layers count them.
#ifndef MUPPET_WORKER_GPU_FIXED_POINT_H_
#define MUPPET_WORKER_GPU_FIXED_POINT_H_

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "kernels/cpu/fixed_point.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/quantize.h"
#include "worker/nn/precision.h"

namespace muppet::gpu {

// The code type of a word length on the tensor cores.
enum class CodeType { kInt8, kHalf, kInt16 };
CodeType CodeTypeFor(int word_length);

// fn(code) with `code` a null pointer to the C++ type of the codes of `word_length`: int8_t,
// __half or int16_t (to cast code buffers to). The one dispatch over code types.
template <typename Fn>
auto WithCodeType(int word_length, Fn&& fn) {
  switch (CodeTypeFor(word_length)) {
    case CodeType::kInt8:
      return fn(static_cast<int8_t*>(nullptr));
    case CodeType::kHalf:
      return fn(static_cast<__half*>(nullptr));
    case CodeType::kInt16:
      break;
  }
  return fn(static_cast<int16_t*>(nullptr));
}

// One layer's quantisations. The workspace is the rank's (one stream); not thread-safe.
class DeviceFixedPoint {
 public:
  // `precision` is the CPU layer's and must outlive this.
  DeviceFixedPoint(const LayerPrecision& precision, cuda::QuantizeWorkspace& workspace)
      : precision_(precision), workspace_(workspace) {}

  // The CPU layer's precision.
  const LayerPrecision& precision() const { return precision_; }

  // Whether the model computes in fixed point now, and at which word length.
  bool active() const { return precision_.fixed_point(); }
  int bits() const { return precision_.numeric()->bits; }

  // Quantises x (n floats, device) as the CPU layer's Quantize(x, operand) would, into the
  // operand's codes (kept until that operand's next Quantize); returns the exponent. Waits for
  // the device. INVALID_ARGUMENT naming the first non-finite element (training diverged);
  // INTERNAL naming the CUDA call that failed.
  absl::StatusOr<int> Quantize(const float* x, int64_t n, kernels::Operand operand,
                               cudaStream_t stream);
  // The operand's codes of its last Quantize, of CodeTypeFor(bits()).
  const void* codes(kernels::Operand operand) const {
    return codes_[static_cast<int>(operand)].data;
  }

  // Rounds x (n floats, device) onto the grid in place as the CPU layer's Round(x, what) would;
  // nothing where the precision defers that rounding. Errors as Quantize's.
  absl::Status Round(float* x, int64_t n, Rounded what, cudaStream_t stream);

 private:
  struct Codes {
    cuda::DeviceWorkspace memory;
    void* data = nullptr;
  };
  cuda::QuantizeSpec Spec(const RoundingBits& bits) const;
  void Count(int64_t saturations);

  const LayerPrecision& precision_;
  cuda::QuantizeWorkspace& workspace_;
  Codes codes_[3];  // By kernels::Operand.
  cuda::DeviceWorkspace round_codes_;
};

// 2^-exponent as a float, the scale of an exact sum of codes (as kernels/cpu computes it).
float CodeScale(int exponent);

}  // namespace muppet::gpu

#endif  // MUPPET_WORKER_GPU_FIXED_POINT_H_
