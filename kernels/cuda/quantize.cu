#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>

#include <climits>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/common/fixed_point_element.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/quantize.h"

namespace muppet::cuda {

struct QuantizeWorkspace::RangePartial {
  float min;
  float max;
  unsigned long long first_non_finite;  // ULLONG_MAX: none.
};

struct QuantizeWorkspace::State {
  RangePartial range;
  int exponent;
  unsigned long long saturations;
};

namespace {

using Partial = QuantizeWorkspace::RangePartial;
using State = QuantizeWorkspace::State;
constexpr int kWarps = kThreads / 32;
// Blocks a range reduction may use: the exponent kernel's one block folds their partials.
constexpr int kMaxRangeBlocks = 4096;

// ---- Kernels ----

__device__ Partial Combine(Partial a, const Partial& b) {
  a.min = fminf(a.min, b.min);
  a.max = fmaxf(a.max, b.max);
  a.first_non_finite =
      a.first_non_finite < b.first_non_finite ? a.first_non_finite : b.first_non_finite;
  return a;
}

__device__ Partial WarpCombine(Partial p) {
  for (int offset = 16; offset > 0; offset /= 2) {
    Partial other;
    other.min = __shfl_xor_sync(0xffffffffu, p.min, offset);
    other.max = __shfl_xor_sync(0xffffffffu, p.max, offset);
    other.first_non_finite = __shfl_xor_sync(0xffffffffu, p.first_non_finite, offset);
    p = Combine(p, other);
  }
  return p;
}

// The block's combined partial, in every thread of warp 0 (blockDim.x == kThreads).
__device__ Partial BlockCombine(Partial p) {
  __shared__ Partial warps[kWarps];
  p = WarpCombine(p);
  if (threadIdx.x % 32 == 0) warps[threadIdx.x / 32] = p;
  __syncthreads();
  if (threadIdx.x < 32) {
    p = threadIdx.x < kWarps ? warps[threadIdx.x] : Partial{INFINITY, -INFINITY, ULLONG_MAX};
    p = WarpCombine(p);
  }
  return p;
}

// Each block's min, max and first non-finite index over a grid-stride share of x[0, n).
__global__ void RangeKernel(const float* x, int64_t n, Partial* partials) {
  Partial p{INFINITY, -INFINITY, ULLONG_MAX};
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = x[i];
    if (!isfinite(v)) {
      p.first_non_finite = min(p.first_non_finite, static_cast<unsigned long long>(i));
      continue;
    }
    p.min = fminf(p.min, v);
    p.max = fmaxf(p.max, v);
  }
  p = BlockCombine(p);
  if (threadIdx.x == 0) partials[blockIdx.x] = p;
}

// One block: folds the partials into the tensor's range and its exponent (ScaleExponentOf,
// shared with the CPU), and zeroes the saturation count.
__global__ void ExponentKernel(const Partial* partials, int blocks, int word_length, State* state) {
  Partial p{INFINITY, -INFINITY, ULLONG_MAX};
  for (int b = threadIdx.x; b < blocks; b += blockDim.x) p = Combine(p, partials[b]);
  p = BlockCombine(p);
  if (threadIdx.x == 0) {
    state->range = p;
    state->exponent = kernels::ScaleExponentOf(p.min, p.max, word_length);
    state->saturations = 0;
  }
}

// One thread per Philox counter (block b, lane l; `counters` of them, QuantizeCounters): elements
// b * 128 + j * 16 + l, j in [0, 8), share the counter's outputs, so each thread draws once for
// eight codes. A warp's loads of one j are two runs of 16 consecutive floats.
template <typename Code>
__global__ void QuantizeKernel(const float* x, int64_t n, int64_t counters, QuantizeSpec spec,
                               State* state, Code* codes) {
  if (state->range.first_non_finite != ULLONG_MAX) return;  // The host reports it.
  const kernels::QuantizeParams p = kernels::GridParams(spec.word_length, state->exponent,
                                                        spec.stochastic, spec.seed, spec.stream);
  unsigned long long saturated = 0;
  for (int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; c < counters;
       c += int64_t{gridDim.x} * blockDim.x) {
    const kernels::PhiloxWords words =
        spec.stochastic ? kernels::CounterWords(spec.seed, spec.stream, static_cast<uint64_t>(c))
                        : kernels::PhiloxWords{{0, 0, 0, 0}};
    const int64_t first = c / 16 * 128 + c % 16;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int64_t i = first + 16 * j;
      if (i >= n) break;
      bool sat = false;
      codes[i] = static_cast<Code>(
          kernels::QuantizeElementWith(x[i], kernels::CounterDraw(words, j), p, &sat));
      saturated += sat;
    }
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    saturated += __shfl_xor_sync(0xffffffffu, saturated, offset);
  }
  if (threadIdx.x % 32 == 0 && saturated > 0) atomicAdd(&state->saturations, saturated);
}

// x[i] = codes[i] * 2^-exponent as the CPU's Dequantize computes it: exactly through double,
// then rounded to float once (exact itself wherever 2^-exponent is a normal float).
template <typename Code>
__global__ void DequantizeKernel(const Code* codes, int64_t n, int exponent, float* x) {
  GridStride(n, [&](int64_t i) {
    x[i] = __double2float_rn(ldexp(static_cast<double>(CodeValue(codes[i])), -exponent));
  });
}

// ---- Launchers ----

template <typename Code>
absl::StatusOr<QuantizeResult> QuantizeWith(const float* x, int64_t n, const QuantizeSpec& spec,
                                            Code* codes, State* state, Partial* partials,
                                            int max_blocks, int sm_count, cudaStream_t stream) {
  constexpr int kMaxBits = std::is_same_v<Code, __half> ? 12 : (sizeof(Code) == 1 ? 8 : 16);
  if (spec.word_length < 2 || spec.word_length > kMaxBits) {
    return absl::InvalidArgumentError(absl::StrCat("word_length: must be in [2, ", kMaxBits,
                                                   "] for these codes, got ", spec.word_length));
  }
  if (n <= 0) return absl::InvalidArgumentError("MinMax of an empty tensor");
  const int range_blocks = std::min(GridBlocks(n, sm_count), max_blocks);
  RangeKernel<<<range_blocks, kThreads, 0, stream>>>(x, n, partials);
  MUPPET_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  ExponentKernel<<<1, kThreads, 0, stream>>>(partials, range_blocks, spec.word_length, state);
  MUPPET_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  const int64_t counters = QuantizeCounters(n);
  QuantizeKernel<Code>
      <<<GridBlocks(counters, sm_count), kThreads, 0, stream>>>(x, n, counters, spec, state, codes);
  MUPPET_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  State done;
  MUPPET_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(&done, state, sizeof(State), cudaMemcpyDeviceToHost, stream));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  if (done.range.first_non_finite != ULLONG_MAX) {
    float value = 0;
    MUPPET_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(&value, x + done.range.first_non_finite, sizeof(float), cudaMemcpyDeviceToHost));
    return absl::InvalidArgumentError(
        absl::StrCat("cannot quantise: element ", done.range.first_non_finite, " is ", value));
  }
  return QuantizeResult{.exponent = done.exponent,
                        .saturations = static_cast<int64_t>(done.saturations)};
}

}  // namespace

absl::StatusOr<QuantizeWorkspace> QuantizeWorkspace::Create() {
  absl::StatusOr<int> sm_count = CurrentSmCount();
  if (!sm_count.ok()) return sm_count.status();
  State* state = nullptr;
  Partial* partials = nullptr;
  MUPPET_CUDA_RETURN_IF_ERROR(cudaMalloc(&state, sizeof(State)));
  if (absl::Status s = ToStatus(cudaMalloc(&partials, kMaxRangeBlocks * sizeof(Partial)),
                                "cudaMalloc(partials)", __FILE__, __LINE__);
      !s.ok()) {
    cudaFree(state);
    return s;
  }
  return QuantizeWorkspace(state, partials, kMaxRangeBlocks, *sm_count);
}

QuantizeWorkspace::QuantizeWorkspace(QuantizeWorkspace&& other) noexcept
    : state_(std::exchange(other.state_, nullptr)),
      partials_(std::exchange(other.partials_, nullptr)),
      max_blocks_(other.max_blocks_),
      sm_count_(other.sm_count_) {}

QuantizeWorkspace::~QuantizeWorkspace() {
  // Errors here would come from an earlier asynchronous failure, already reported.
  if (state_ != nullptr) cudaFree(state_);
  if (partials_ != nullptr) cudaFree(partials_);
}

absl::StatusOr<QuantizeResult> Quantize(const float* x, int64_t n, const QuantizeSpec& spec,
                                        int8_t* codes, QuantizeWorkspace& w, cudaStream_t stream) {
  return QuantizeWith(x, n, spec, codes, w.state_, w.partials_, w.max_blocks_, w.sm_count_, stream);
}

absl::StatusOr<QuantizeResult> Quantize(const float* x, int64_t n, const QuantizeSpec& spec,
                                        __half* codes, QuantizeWorkspace& w, cudaStream_t stream) {
  return QuantizeWith(x, n, spec, codes, w.state_, w.partials_, w.max_blocks_, w.sm_count_, stream);
}

absl::StatusOr<QuantizeResult> Quantize(const float* x, int64_t n, const QuantizeSpec& spec,
                                        int16_t* codes, QuantizeWorkspace& w, cudaStream_t stream) {
  return QuantizeWith(x, n, spec, codes, w.state_, w.partials_, w.max_blocks_, w.sm_count_, stream);
}

absl::Status Dequantize(const int8_t* codes, int64_t n, int exponent, float* x,
                        cudaStream_t stream) {
  return LaunchGridStride(DequantizeKernel<int8_t>, n, stream, codes, n, exponent, x);
}

absl::Status Dequantize(const __half* codes, int64_t n, int exponent, float* x,
                        cudaStream_t stream) {
  return LaunchGridStride(DequantizeKernel<__half>, n, stream, codes, n, exponent, x);
}

absl::Status Dequantize(const int16_t* codes, int64_t n, int exponent, float* x,
                        cudaStream_t stream) {
  return LaunchGridStride(DequantizeKernel<int16_t>, n, stream, codes, n, exponent, x);
}

absl::StatusOr<QuantizeResult> RoundToGrid(float* x, int64_t n, const QuantizeSpec& spec,
                                           int16_t* codes, QuantizeWorkspace& w,
                                           cudaStream_t stream) {
  absl::StatusOr<QuantizeResult> result =
      QuantizeWith(x, n, spec, codes, w.state_, w.partials_, w.max_blocks_, w.sm_count_, stream);
  if (!result.ok()) return result;
  DequantizeKernel<int16_t>
      <<<GridBlocks(n, w.sm_count_), kThreads, 0, stream>>>(codes, n, result->exponent, x);
  MUPPET_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  MUPPET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  return result;
}

}  // namespace muppet::cuda
