// BatchNorm's passes over channels-last rows (rows x channels, one row per pixel), on FP32
// values or on fixed-point codes (a convolution's rounded output, read a byte or two an element
// instead of four). Each works on a range of rows, so the caller chooses the threads and the
// order in which their partial sums are added.
//
// Every instruction set computes the same bits: lanes are channels, each channel's sums run down
// its rows in order, and no multiply and add are fused. On codes, the sums of the statistics are
// exact integers; on FP32 values they are doubles, which equal the exact sums whenever those fit
// in 53 bits in units of the codes' grid (every tensor the tests and models here produce).
#ifndef MUPPET_KERNELS_CPU_BATCH_NORM_H_
#define MUPPET_KERNELS_CPU_BATCH_NORM_H_

#include <cmath>
#include <cstdint>

#include "kernels/cpu/isa.h"

namespace muppet::kernels {

// The input, `rows` x `channels`: FP32 values, or codes (exactly one of the three pointers set)
// standing for code * factor, with factor from ExactDequantizeFactor (fixed_point.h).
struct ChannelRows {
  int64_t rows = 0;
  int64_t channels = 0;
  const float* f32 = nullptr;
  const int8_t* s8 = nullptr;
  const int16_t* s16 = nullptr;
  float factor = 1;
};

// Adds each channel's sum of x and of x^2 over rows [begin, end) into sum[c] and sum_sq[c].
void ChannelSums(const ChannelRows& x, int64_t begin, int64_t end, double* sum, double* sum_sq,
                 Isa isa = ActiveIsa());

// Each channel's smallest and largest code, gathered by ChannelSums on codes at the cost of two
// vector instructions a row, so that the range of the BatchNorm output over those codes needs no
// pass of its own (QuantizeTensorInto on a ChannelAffineRows).
struct ChannelCodeExtremes {
  int32_t* min = nullptr;  // Lowered per channel; start at INT32_MAX.
  int32_t* max = nullptr;  // Raised per channel; start at INT32_MIN.
};

// ChannelSums that also, on codes, lowers extremes.min[c] and raises extremes.max[c] to the codes
// of rows [begin, end) (both arrays `channels` long); on FP32 values it leaves them as they are.
void ChannelSums(const ChannelRows& x, int64_t begin, int64_t end, double* sum, double* sum_sq,
                 const ChannelCodeExtremes& extremes, Isa isa = ActiveIsa());

// A tensor added to BatchNorm's output, then a floor: the residual add (and its ReLU, floor 0)
// after a ResNet block's last BatchNorm, fused into its pass. `values` is indexed like x.
struct ChannelAddend {
  const float* values = nullptr;  // Null: nothing added.
  float floor = -INFINITY;
};

// y = max(x * scale[c] + shift[c], floor) over rows [begin, end), then, with an addend,
// max(y + addend[i], addend.floor); y holds those rows only ((end - begin) x channels, row
// `begin` first).
void ChannelAffine(const ChannelRows& x, int64_t begin, int64_t end, const float* scale,
                   const float* shift, float floor, float* y, const ChannelAddend& addend = {},
                   Isa isa = ActiveIsa());

// The per-channel statistics of one BatchNorm step and dLoss/dOutput, for the backward passes.
// With the fused ReLU (relu_scale and relu_shift set: the forward's per-channel scale and shift),
// g = dy where x * relu_scale[c] + relu_shift[c], the forward's output before the ReLU, is
// positive and 0 elsewhere, recomputed from x rather than read from the output; else g = dy.
// xhat = (x - mean[c]) * inv_std[c].
struct ChannelGrad {
  const float* dy = nullptr;  // rows x channels.
  const float* mean = nullptr;
  const float* inv_std = nullptr;
  const float* relu_scale = nullptr;
  const float* relu_shift = nullptr;
};

// Adds each channel's sum of g and of g * xhat over rows [begin, end) into sum_g and sum_g_xhat.
void ChannelGradSums(const ChannelRows& x, const ChannelGrad& grad, int64_t begin, int64_t end,
                     double* sum_g, double* sum_g_xhat, Isa isa = ActiveIsa());

// dx = scale[c] * (g - mean_g[c] - xhat * mean_g_xhat[c]) over rows [begin, end).
void ChannelInputGrad(const ChannelRows& x, const ChannelGrad& grad, int64_t begin, int64_t end,
                      const float* scale, const float* mean_g, const float* mean_g_xhat, float* dx,
                      Isa isa = ActiveIsa());

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_BATCH_NORM_H_
