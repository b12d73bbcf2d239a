// The loops behind batch_norm.h, written once and compiled per instruction set: each
// batch_norm*.cc includes this under its own target pragma, and the vectoriser maps the 16-lane
// channel blocks onto that set's registers (the AVX-512 file takes whole blocks with its own
// intrinsics and leaves only the last channels to these loops). The anonymous namespace gives
// every file its own copy (one definition per instruction set, never merged by the linker). No
// multiply-add is fused (-ffp-contract=off), so every set computes the same bits.
#ifndef MUPPET_KERNELS_CPU_BATCH_NORM_IMPL_H_
#define MUPPET_KERNELS_CPU_BATCH_NORM_IMPL_H_

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/relu_grad.h"

namespace muppet::kernels::internal {

// batch_norm.h's functions for one instruction set each (Scalar, Avx2, Avx512).
#define MUPPET_BATCH_NORM_DECLARE(Suffix)                                                          \
  void ChannelSums##Suffix(const ChannelRows& x, int64_t begin, int64_t end, double* sum,          \
                           double* sum_sq, const ChannelCodeExtremes& extremes);                   \
  void ChannelAffine##Suffix(const ChannelRows& x, int64_t begin, int64_t end, const float* scale, \
                             const float* shift, float floor, float* y,                            \
                             const ChannelAddend& addend);                                         \
  void ChannelGradSums##Suffix(const ChannelRows& x, const ChannelGrad& grad, int64_t begin,       \
                               int64_t end, double* sum_g, double* sum_g_xhat);                    \
  void ChannelInputGrad##Suffix(const ChannelRows& x, const ChannelGrad& grad, int64_t begin,      \
                                int64_t end, const float* scale, const float* mean_g,              \
                                const float* mean_g_xhat, float* dx);
MUPPET_BATCH_NORM_DECLARE(Scalar)
MUPPET_BATCH_NORM_DECLARE(Avx2)
MUPPET_BATCH_NORM_DECLARE(Avx512)
#undef MUPPET_BATCH_NORM_DECLARE

namespace {

inline constexpr int64_t kLanes = 16;  // Channels per block: one AVX-512 vector of floats.

struct FloatLoad {
  const float* x;
  float operator()(int64_t i) const { return x[i]; }
};

template <typename Code>
struct CodeLoad {
  const Code* codes;
  float factor;
  float operator()(int64_t i) const { return static_cast<float>(codes[i]) * factor; }
};

// Calls body(load) with the element reader of x's FP32 values or codes.
template <typename Body>
void WithLoad(const ChannelRows& x, Body body) {
  if (x.s8 != nullptr) return body(CodeLoad<int8_t>{x.s8, x.factor});
  if (x.s16 != nullptr) return body(CodeLoad<int16_t>{x.s16, x.factor});
  body(FloatLoad{x.f32});
}

// Calls block(j0, lanes) for each block of channels from `first` on: full blocks with lanes an
// integral_constant of kLanes (a constant the vectoriser unrolls), then the remaining channels
// one at a time. Every function below takes `first`, the channels before it being left to a
// caller with its own loops for whole blocks.
template <typename Block>
void ForChannelBlocks(int64_t first, int64_t c, Block block) {
  int64_t j0 = first;
  for (; j0 + kLanes <= c; j0 += kLanes) block(j0, std::integral_constant<int64_t, kLanes>());
  for (; j0 < c; ++j0) block(j0, std::integral_constant<int64_t, 1>());
}

// FP32 values: double sums down each channel's rows.
inline void FloatSums(const float* x, int64_t first, int64_t c, int64_t begin, int64_t end,
                      double* sum, double* sum_sq) {
  ForChannelBlocks(first, c, [&](int64_t j0, auto lanes) {
    constexpr int64_t kN = decltype(lanes)::value;
    double s[kN], q[kN];
    for (int64_t l = 0; l < kN; ++l) s[l] = sum[j0 + l], q[l] = sum_sq[j0 + l];
    for (int64_t row = begin; row < end; ++row) {
      const float* r = x + row * c + j0;
      for (int64_t l = 0; l < kN; ++l) {
        const double v = r[l];
        s[l] += v;
        q[l] += v * v;
      }
    }
    for (int64_t l = 0; l < kN; ++l) sum[j0 + l] = s[l], sum_sq[j0 + l] = q[l];
  });
}

// Codes: exact integer sums, then scaled by the grid (exact for sums below 2^53); the extremes
// where asked for.
template <typename Code>
void CodeSums(const Code* codes, double factor, int64_t first, int64_t c, int64_t begin,
              int64_t end, double* sum, double* sum_sq, const ChannelCodeExtremes& extremes) {
  ForChannelBlocks(first, c, [&](int64_t j0, auto lanes) {
    constexpr int64_t kN = decltype(lanes)::value;
    int64_t s[kN] = {}, q[kN] = {};
    int32_t lo[kN], hi[kN];
    for (int64_t l = 0; l < kN; ++l) lo[l] = INT32_MAX, hi[l] = INT32_MIN;
    for (int64_t row = begin; row < end; ++row) {
      const Code* r = codes + row * c + j0;
      for (int64_t l = 0; l < kN; ++l) {
        const int32_t v = r[l];
        s[l] += v;
        q[l] += v * v;  // At most 2^30: int32.
        lo[l] = std::min(lo[l], v);
        hi[l] = std::max(hi[l], v);
      }
    }
    for (int64_t l = 0; l < kN; ++l) {
      sum[j0 + l] += static_cast<double>(s[l]) * factor;
      sum_sq[j0 + l] += static_cast<double>(q[l]) * (factor * factor);
    }
    if (extremes.min == nullptr) return;
    for (int64_t l = 0; l < kN; ++l) {
      extremes.min[j0 + l] = std::min(extremes.min[j0 + l], lo[l]);
      extremes.max[j0 + l] = std::max(extremes.max[j0 + l], hi[l]);
    }
  });
}

inline void Sums(const ChannelRows& x, int64_t first, int64_t begin, int64_t end, double* sum,
                 double* sum_sq, const ChannelCodeExtremes& extremes) {
  const int64_t c = x.channels;
  if (x.s8 != nullptr) return CodeSums(x.s8, x.factor, first, c, begin, end, sum, sum_sq, extremes);
  if (x.s16 != nullptr) {
    return CodeSums(x.s16, x.factor, first, c, begin, end, sum, sum_sq, extremes);
  }
  FloatSums(x.f32, first, c, begin, end, sum, sum_sq);
}

// Calls fn(v, i, j) for every element i of rows [begin, end) in channels from `first` on, with
// v its value and j its channel.
template <typename Fn>
void ForEachElement(const ChannelRows& x, int64_t first, int64_t begin, int64_t end, Fn fn) {
  const int64_t c = x.channels;
  WithLoad(x, [&](auto load) {
    ForChannelBlocks(first, c, [&](int64_t j0, auto lanes) {
      constexpr int64_t kN = decltype(lanes)::value;
      for (int64_t row = begin; row < end; ++row) {
        const int64_t i = row * c + j0;
        for (int64_t l = 0; l < kN; ++l) fn(load(i + l), i + l, j0 + l);
      }
    });
  });
}

inline void Affine(const ChannelRows& x, int64_t first, int64_t begin, int64_t end,
                   const float* scale, const float* shift, float floor, float* y,
                   const ChannelAddend& addend) {
  const int64_t y0 = begin * x.channels;  // The element of x that y[0] stands for.
  if (addend.values == nullptr) {
    ForEachElement(x, first, begin, end, [&](float v, int64_t i, int64_t j) {
      y[i - y0] = std::max(v * scale[j] + shift[j], floor);
    });
    return;
  }
  ForEachElement(x, first, begin, end, [&](float v, int64_t i, int64_t j) {
    y[i - y0] = std::max(std::max(v * scale[j] + shift[j], floor) + addend.values[i], addend.floor);
  });
}

// g of element i, of channel j, whose input value is v.
template <bool kRelu>
float Gradient(const ChannelGrad& g, float v, int64_t j, int64_t i) {
  if constexpr (kRelu) {
    return ReluGrad(g.dy[i], v * g.relu_scale[j] + g.relu_shift[j]);
  } else {
    return g.dy[i];
  }
}

template <bool kRelu>
void GradSums(const ChannelRows& x, const ChannelGrad& grad, int64_t first, int64_t begin,
              int64_t end, double* sum_g, double* sum_g_xhat) {
  const int64_t c = x.channels;
  WithLoad(x, [&](auto load) {
    ForChannelBlocks(first, c, [&](int64_t j0, auto lanes) {
      constexpr int64_t kN = decltype(lanes)::value;
      double s[kN], q[kN];
      for (int64_t l = 0; l < kN; ++l) s[l] = sum_g[j0 + l], q[l] = sum_g_xhat[j0 + l];
      for (int64_t row = begin; row < end; ++row) {
        const int64_t i = row * c + j0;
        for (int64_t l = 0; l < kN; ++l) {
          const float v = load(i + l);
          const float g = Gradient<kRelu>(grad, v, j0 + l, i + l);
          const float xhat = (v - grad.mean[j0 + l]) * grad.inv_std[j0 + l];
          s[l] += g;
          q[l] += static_cast<double>(g) * xhat;
        }
      }
      for (int64_t l = 0; l < kN; ++l) sum_g[j0 + l] = s[l], sum_g_xhat[j0 + l] = q[l];
    });
  });
}

template <bool kRelu>
void InputGrad(const ChannelRows& x, const ChannelGrad& grad, int64_t first, int64_t begin,
               int64_t end, const float* scale, const float* mean_g, const float* mean_g_xhat,
               float* dx) {
  ForEachElement(x, first, begin, end, [&](float v, int64_t i, int64_t j) {
    const float xhat = (v - grad.mean[j]) * grad.inv_std[j];
    dx[i] = scale[j] * (Gradient<kRelu>(grad, v, j, i) - mean_g[j] - xhat * mean_g_xhat[j]);
  });
}

}  // namespace
}  // namespace muppet::kernels::internal

// Defines the functions declared above for one instruction set, `Suffix`, inside
// muppet::kernels::internal, on the loops above alone.
#define MUPPET_BATCH_NORM_DEFINE(Suffix)                                                           \
  void ChannelSums##Suffix(const ChannelRows& x, int64_t begin, int64_t end, double* sum,          \
                           double* sum_sq, const ChannelCodeExtremes& extremes) {                  \
    Sums(x, 0, begin, end, sum, sum_sq, extremes);                                                 \
  }                                                                                                \
  void ChannelAffine##Suffix(const ChannelRows& x, int64_t begin, int64_t end, const float* scale, \
                             const float* shift, float floor, float* y,                            \
                             const ChannelAddend& addend) {                                        \
    Affine(x, 0, begin, end, scale, shift, floor, y, addend);                                      \
  }                                                                                                \
  void ChannelGradSums##Suffix(const ChannelRows& x, const ChannelGrad& grad, int64_t begin,       \
                               int64_t end, double* sum_g, double* sum_g_xhat) {                   \
    grad.relu_scale != nullptr ? GradSums<true>(x, grad, 0, begin, end, sum_g, sum_g_xhat)         \
                               : GradSums<false>(x, grad, 0, begin, end, sum_g, sum_g_xhat);       \
  }                                                                                                \
  void ChannelInputGrad##Suffix(const ChannelRows& x, const ChannelGrad& grad, int64_t begin,      \
                                int64_t end, const float* scale, const float* mean_g,              \
                                const float* mean_g_xhat, float* dx) {                             \
    grad.relu_scale != nullptr                                                                     \
        ? InputGrad<true>(x, grad, 0, begin, end, scale, mean_g, mean_g_xhat, dx)                  \
        : InputGrad<false>(x, grad, 0, begin, end, scale, mean_g, mean_g_xhat, dx);                \
  }

#endif  // MUPPET_KERNELS_CPU_BATCH_NORM_IMPL_H_
