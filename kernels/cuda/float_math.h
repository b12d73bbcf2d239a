// The two meanings of "FP32" on a GPU with tensor cores: exact FP32 arithmetic (FMA units), or
// TF32 tensor cores (operands rounded to 10-bit mantissas, FP32 accumulation), PyTorch's default
// for convolutions. The FP32 layers (cudnn_conv.h, linear.h) take one; a benchmark reports which
// its baseline used. Plain C++.
#ifndef MUPPET_KERNELS_CUDA_FLOAT_MATH_H_
#define MUPPET_KERNELS_CUDA_FLOAT_MATH_H_

namespace muppet::cuda {

enum class FloatMath { kExact, kTf32 };

// "fp32" or "tf32".
constexpr const char* FloatMathName(FloatMath math) {
  return math == FloatMath::kExact ? "fp32" : "tf32";
}

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_FLOAT_MATH_H_
