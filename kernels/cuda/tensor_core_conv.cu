#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/tensor_core_conv.h"

namespace muppet::cuda {
namespace {

// ---- Kernels ----

// The padded im2col matrix (m_pad x k_pad) of x's 8-bit codes, four columns per thread: where C
// is a multiple of 4 the four are one pixel's consecutive channels, copied as one word.
__global__ void Im2ColWordsKernel(ConvGeometry g, ConvGemm s, const int8_t* x, int8_t* cols) {
  const bool whole_words = g.c % 4 == 0;
  GridStride(s.m_pad * (s.k_pad / 4), [&](int64_t i) {
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
  });
}

// The padded im2col matrix of wider codes, one per thread.
template <typename Code>
__global__ void Im2ColKernel(ConvGeometry g, ConvGemm s, const Code* x, Code* cols) {
  GridStride(s.m_pad * s.k_pad, [&](int64_t i) {
    const int64_t at = Im2ColSource(g, i / s.k_pad, i % s.k_pad);
    cols[i] = at < 0 ? Code{} : x[at];
  });
}

// The transposed im2col matrix (k_pad x m_pad), one code per thread, consecutive threads along
// the pixels.
template <typename Code>
__global__ void Im2ColTransposedKernel(ConvGeometry g, ConvGemm s, const Code* x, Code* cols_t) {
  GridStride(s.k_pad * s.m_pad, [&](int64_t i) {
    const int64_t at = Im2ColSource(g, i % s.m_pad, i / s.m_pad);
    cols_t[i] = at < 0 ? Code{} : x[at];
  });
}

// out (out_rows x out_cols) = in (rows x cols, row-major), or its transpose, padded with code 0.
template <typename Code>
__global__ void PadKernel(const Code* in, int64_t rows, int64_t cols, bool transpose,
                          int64_t out_rows, int64_t out_cols, Code* out) {
  GridStride(out_rows * out_cols, [&](int64_t i) {
    const int64_t r = i / out_cols, c = i % out_cols;
    const int64_t in_r = transpose ? c : r, in_c = transpose ? r : c;
    out[i] = in_r < rows && in_c < cols ? in[in_r * cols + in_c] : Code{};
  });
}

// y (s.m x s.o) = float(sums) * scale + bias, from the padded m_pad x o_pad sums.
template <typename Sum>
__global__ void ForwardEpilogueKernel(ConvGemm s, const Sum* sums, float scale, const float* bias,
                                      float* y) {
  GridStride(s.m * s.o, [&](int64_t i) {
    const int64_t r = i / s.o, o = i % s.o;
    const float v = static_cast<float>(sums[r * s.o_pad + o]) * scale;
    y[i] = bias != nullptr ? v + bias[o] : v;
  });
}

// dx = float(the sum of each element's taps in the column gradients) * scale + addend: integer
// sums exactly in int64, FP16's in FP32 in tap order.
template <typename Sum>
__global__ void Col2ImKernel(ConvGeometry g, ConvGemm s, const Sum* dcols, float scale,
                             const float* addend, float* dx) {
  using Wide = std::conditional_t<std::is_floating_point_v<Sum>, float, long long>;
  const int64_t taps = g.kernel * g.kernel;
  GridStride(g.n * g.h * g.w * g.c, [&](int64_t e) {
    Wide sum = 0;
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t at = Col2ImSource(g, s.k_pad, e, t);
      if (at >= 0) sum += dcols[at];
    }
    const float v = static_cast<float>(sum) * scale;
    dx[e] = addend != nullptr ? v + addend[e] : v;
  });
}

// total = (first ? 0 : total) + one chunk's sums.
__global__ void AccumulateKernel(const int32_t* sums, int64_t count, bool first, long long* total) {
  GridStride(count, [&](int64_t i) { total[i] = (first ? 0 : total[i]) + sums[i]; });
}

// dw (o x k) = float(total) * scale, from the padded o_pad x k_pad totals.
template <typename Total>
__global__ void WeightsEpilogueKernel(ConvGemm s, const Total* total, float scale, float* dw) {
  GridStride(s.o * s.k, [&](int64_t i) {
    dw[i] = static_cast<float>(total[i / s.k * s.k_pad + i % s.k]) * scale;
  });
}

// db[o] = float(the sum of dy's column o) * scale: one warp per output channel.
template <typename Code>
__global__ void ColumnSumsKernel(const Code* dy, int64_t rows, int64_t cols, float scale,
                                 float* db) {
  WarpLineSums(dy, cols, rows, 1, cols,
               [&](int64_t c, long long sum) { db[c] = static_cast<float>(sum) * scale; });
}

// ---- Launchers ----

absl::Status LaunchStatus() {
  MUPPET_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

template <typename Code>
absl::Status Pad(const Code* in, int64_t rows, int64_t cols, bool transpose, int64_t out_rows,
                 int64_t out_cols, Code* out, int sm_count, cudaStream_t stream) {
  PadKernel<<<GridBlocks(out_rows * out_cols, sm_count), kThreads, 0, stream>>>(
      in, rows, cols, transpose, out_rows, out_cols, out);
  return LaunchStatus();
}

template <typename Code>
absl::Status Im2Col(const ConvGeometry& g, const ConvGemm& s, const Code* x, Code* cols,
                    int sm_count, cudaStream_t stream) {
  if constexpr (std::is_same_v<Code, int8_t>) {
    Im2ColWordsKernel<<<GridBlocks(s.m_pad * s.k_pad / 4, sm_count), kThreads, 0, stream>>>(g, s, x,
                                                                                            cols);
  } else {
    Im2ColKernel<<<GridBlocks(s.m_pad * s.k_pad, sm_count), kThreads, 0, stream>>>(g, s, x, cols);
  }
  return LaunchStatus();
}

absl::Status CheckInputs(const ConvGeometry& g, const void* x) {
  if (absl::Status st = CheckConvGeometry(g); !st.ok()) return st;
  if (reinterpret_cast<uintptr_t>(x) % 4 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("x: must be 4-byte aligned, got address ", reinterpret_cast<uintptr_t>(x)));
  }
  return absl::OkStatus();
}

}  // namespace

template <typename Code>
absl::StatusOr<TensorCoreConv<Code>> TensorCoreConv<Code>::Create() {
  absl::StatusOr<int> sm_count = CurrentSmCount();
  if (!sm_count.ok()) return sm_count.status();
  absl::StatusOr<Gemm> gemm = Gemm::Create();
  if (!gemm.ok()) return gemm.status();
  return TensorCoreConv(*std::move(gemm), *sm_count);
}

template <typename Code>
absl::Status TensorCoreConv<Code>::Forward(const ConvGeometry& g, const Code* x, const Code* w,
                                           float scale, const float* bias, float* y,
                                           cudaStream_t stream) {
  if (absl::Status st = CheckInputs(g, x); !st.ok()) return st;
  const ConvGemm s = ConvGemmOf(g);
  absl::StatusOr<char*> workspace = workspace_.Reserve(
      WorkspaceCarver::Bytes(s.m_pad * s.k_pad * sizeof(Code), s.o_pad * s.k_pad * sizeof(Code),
                             s.m_pad * s.o_pad * sizeof(Sum)),
      stream);
  if (!workspace.ok()) return workspace.status();
  WorkspaceCarver carve(*workspace);
  Code* cols = carve.Take<Code>(s.m_pad * s.k_pad);
  Code* weights = carve.Take<Code>(s.o_pad * s.k_pad);
  Sum* sums = carve.Take<Sum>(s.m_pad * s.o_pad);
  // Each step only once the one before it was enqueued.
  absl::Status st = Im2Col(g, s, x, cols, sm_count_, stream);
  if (st.ok()) st = Pad(w, s.o, s.k, false, s.o_pad, s.k_pad, weights, sm_count_, stream);
  if (st.ok()) {
    st = gemm_.Run({.m = s.m_pad, .n = s.o_pad, .k = s.k_pad}, cols, weights, sums, stream);
  }
  if (!st.ok()) return st;
  ForwardEpilogueKernel<<<GridBlocks(s.m * s.o, sm_count_), kThreads, 0, stream>>>(s, sums, scale,
                                                                                   bias, y);
  return LaunchStatus();
}

template <typename Code>
absl::Status TensorCoreConv<Code>::BackwardData(const ConvGeometry& g, const Code* dy,
                                                const Code* w, float scale, const float* addend,
                                                float* dx, cudaStream_t stream) {
  if (absl::Status st = CheckConvGeometry(g); !st.ok()) return st;
  const ConvGemm s = ConvGemmOf(g);
  absl::StatusOr<char*> workspace = workspace_.Reserve(
      WorkspaceCarver::Bytes(s.m_pad * s.o_pad * sizeof(Code), s.k_pad * s.o_pad * sizeof(Code),
                             s.m_pad * s.k_pad * sizeof(Sum)),
      stream);
  if (!workspace.ok()) return workspace.status();
  WorkspaceCarver carve(*workspace);
  Code* padded_dy = carve.Take<Code>(s.m_pad * s.o_pad);
  Code* weights_t = carve.Take<Code>(s.k_pad * s.o_pad);
  Sum* dcols = carve.Take<Sum>(s.m_pad * s.k_pad);
  absl::Status st = Pad(dy, s.m, s.o, false, s.m_pad, s.o_pad, padded_dy, sm_count_, stream);
  if (st.ok()) st = Pad(w, s.o, s.k, true, s.k_pad, s.o_pad, weights_t, sm_count_, stream);
  if (st.ok()) {
    st = gemm_.Run({.m = s.m_pad, .n = s.k_pad, .k = s.o_pad}, padded_dy, weights_t, dcols, stream);
  }
  if (!st.ok()) return st;
  Col2ImKernel<<<GridBlocks(g.n * g.h * g.w * g.c, sm_count_), kThreads, 0, stream>>>(
      g, s, dcols, scale, addend, dx);
  return LaunchStatus();
}

template <typename Code>
absl::Status TensorCoreConv<Code>::WeightSums(const ConvGemm& s, const Code* dy_t,
                                              const Code* cols_t, Sum* sums, long long* total,
                                              cudaStream_t stream) {
  if constexpr (!std::is_same_v<Code, int8_t>) {
    return gemm_.Run({.m = s.o_pad, .n = s.k_pad, .k = s.m_pad}, dy_t, cols_t, sums, stream);
  } else {
    bool first = true;
    for (const auto& [m0, m1] : ExactKChunks(s.m_pad, 8, 8)) {  // The reduction over pixels.
      const GemmShape chunk{.m = s.o_pad, .n = s.k_pad, .k = m1 - m0};
      if (absl::Status st =
              gemm_.Run(chunk, dy_t + m0, s.m_pad, cols_t + m0, s.m_pad, sums, stream);
          !st.ok()) {
        return st;
      }
      AccumulateKernel<<<GridBlocks(s.o_pad * s.k_pad, sm_count_), kThreads, 0, stream>>>(
          sums, s.o_pad * s.k_pad, first, total);
      if (absl::Status st = LaunchStatus(); !st.ok()) return st;
      first = false;
    }
    return absl::OkStatus();
  }
}

template <typename Code>
absl::Status TensorCoreConv<Code>::BackwardWeights(const ConvGeometry& g, const Code* dy,
                                                   const Code* x, float scale, float dy_scale,
                                                   float* dw, float* db, cudaStream_t stream) {
  if (absl::Status st = CheckConvGeometry(g); !st.ok()) return st;
  const ConvGemm s = ConvGemmOf(g);
  constexpr bool kChunked = std::is_same_v<Code, int8_t>;  // int32 sums, added in int64.
  absl::StatusOr<char*> workspace = workspace_.Reserve(
      WorkspaceCarver::Bytes(s.o_pad * s.m_pad * sizeof(Code), s.k_pad * s.m_pad * sizeof(Code),
                             s.o_pad * s.k_pad * sizeof(Sum), kChunked ? s.o_pad * s.k_pad * 8 : 0),
      stream);
  if (!workspace.ok()) return workspace.status();
  WorkspaceCarver carve(*workspace);
  Code* dy_t = carve.Take<Code>(s.o_pad * s.m_pad);
  Code* cols_t = carve.Take<Code>(s.k_pad * s.m_pad);
  Sum* sums = carve.Take<Sum>(s.o_pad * s.k_pad);
  long long* total = kChunked ? carve.Take<long long>(s.o_pad * s.k_pad) : nullptr;
  if (absl::Status st = Pad(dy, s.m, s.o, true, s.o_pad, s.m_pad, dy_t, sm_count_, stream);
      !st.ok()) {
    return st;
  }
  Im2ColTransposedKernel<<<GridBlocks(s.k_pad * s.m_pad, sm_count_), kThreads, 0, stream>>>(g, s, x,
                                                                                            cols_t);
  if (absl::Status st = LaunchStatus(); !st.ok()) return st;
  if (absl::Status st = WeightSums(s, dy_t, cols_t, sums, total, stream); !st.ok()) return st;
  if constexpr (kChunked) {
    WeightsEpilogueKernel<<<GridBlocks(s.o * s.k, sm_count_), kThreads, 0, stream>>>(s, total,
                                                                                     scale, dw);
  } else {
    WeightsEpilogueKernel<<<GridBlocks(s.o * s.k, sm_count_), kThreads, 0, stream>>>(s, sums, scale,
                                                                                     dw);
  }
  if (absl::Status st = LaunchStatus(); !st.ok()) return st;
  if (db != nullptr) {
    ColumnSumsKernel<<<GridBlocks(s.o * 32, sm_count_), kThreads, 0, stream>>>(dy, s.m, s.o,
                                                                               dy_scale, db);
    return LaunchStatus();
  }
  return absl::OkStatus();
}

template class TensorCoreConv<int8_t>;
template class TensorCoreConv<__half>;
template class TensorCoreConv<int16_t>;

}  // namespace muppet::cuda
