#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_s8.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/launch.h"

namespace muppet::cuda {
namespace {

// ---- Kernels ----

// The padded im2col matrix (s.m_pad x s.k_pad) of x's codes, four columns per thread: where C is
// a multiple of 4 the four are one pixel's consecutive channels, copied as one word.
__global__ void Im2ColKernel(ConvGeometry g, ConvGemm s, const int8_t* x, int8_t* cols) {
  const int64_t words = s.m_pad * (s.k_pad / 4);
  const bool whole_words = g.c % 4 == 0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < words;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t row = i / (s.k_pad / 4), col = i % (s.k_pad / 4) * 4;
    uint32_t word = 0;
    if (whole_words) {
      const int64_t at = Im2ColSource(g, row, col);
      if (at >= 0) word = *reinterpret_cast<const uint32_t*>(x + at);
    } else {
      for (int b = 0; b < 4; ++b) {
        const int64_t at = Im2ColSource(g, row, col + b);
        const uint32_t code = at < 0 ? 0u : static_cast<uint8_t>(x[at]);
        word |= code << (8 * b);
      }
    }
    reinterpret_cast<uint32_t*>(cols)[i] = word;
  }
}

// The weights (s.n x s.k) into rows of s.k_pad codes, s.n_pad rows, padded with code 0.
__global__ void PadWeightsKernel(ConvGemm s, const int8_t* w, int8_t* padded) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < s.n_pad * s.k_pad;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t o = i / s.k_pad, q = i % s.k_pad;
    padded[i] = o < s.n && q < s.k ? w[o * s.k + q] : int8_t{0};
  }
}

// y (s.m x s.n) = float(sums) * scale + bias, from the padded s.m_pad x s.n_pad sums.
__global__ void EpilogueKernel(ConvGemm s, const int32_t* sums, float scale, const float* bias,
                               float* y) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < s.m * s.n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / s.n, o = i % s.n;
    const float v = static_cast<float>(sums[r * s.n_pad + o]) * scale;
    y[i] = bias != nullptr ? v + bias[o] : v;
  }
}

// ---- Launchers ----

int64_t Align(int64_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace

absl::StatusOr<ConvS8> ConvS8::Create() {
  absl::StatusOr<int> sm_count = CurrentSmCount();
  if (!sm_count.ok()) return sm_count.status();
  absl::StatusOr<GemmS8> gemm = GemmS8::Create();
  if (!gemm.ok()) return gemm.status();
  return ConvS8(*std::move(gemm), *sm_count);
}

absl::Status ConvS8::Forward(const ConvGeometry& g, const int8_t* x, const int8_t* w, float scale,
                             const float* bias, float* y, cudaStream_t stream) {
  if (absl::Status st = CheckConvGeometry(g); !st.ok()) return st;
  if (reinterpret_cast<uintptr_t>(x) % 4 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("x: must be 4-byte aligned, got address ", reinterpret_cast<uintptr_t>(x)));
  }
  const ConvGemm s = ConvGemmOf(g);
  const int64_t cols_bytes = Align(s.m_pad * s.k_pad), weights_bytes = Align(s.n_pad * s.k_pad);
  absl::StatusOr<char*> workspace = workspace_.Reserve(
      cols_bytes + weights_bytes + s.m_pad * s.n_pad * int64_t{sizeof(int32_t)}, stream);
  if (!workspace.ok()) return workspace.status();
  int8_t* cols = reinterpret_cast<int8_t*>(*workspace);
  int8_t* padded = cols + cols_bytes;
  int32_t* sums = reinterpret_cast<int32_t*>(padded + weights_bytes);
  Im2ColKernel<<<GridBlocks(s.m_pad * s.k_pad / 4, sm_count_), kThreads, 0, stream>>>(g, s, x,
                                                                                      cols);
  MUPPET_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  PadWeightsKernel<<<GridBlocks(s.n_pad * s.k_pad, sm_count_), kThreads, 0, stream>>>(s, w, padded);
  MUPPET_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  if (absl::Status st =
          gemm_.Run({.m = s.m_pad, .n = s.n_pad, .k = s.k_pad}, cols, padded, sums, stream);
      !st.ok()) {
    return st;
  }
  EpilogueKernel<<<GridBlocks(s.m * s.n, sm_count_), kThreads, 0, stream>>>(s, sums, scale, bias,
                                                                            y);
  MUPPET_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace muppet::cuda
