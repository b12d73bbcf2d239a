#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/byte_split.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/gemm_s16.h"
#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launch.h"

namespace muppet::cuda {
namespace {

// ---- Kernels ----

// The bytes of codes[0, count), into high[] and low[].
__global__ void SplitKernel(const int16_t* codes, int64_t count, int8_t* high, int8_t* low) {
  GridStride(count, [&](int64_t i) {
    const SplitCode s = SplitCode16(codes[i]);
    high[i] = s.high;
    low[i] = s.low;
  });
}

// sums[r] = the sum of row r of codes (rows x k, row-major): one warp per row.
__global__ void RowSumsKernel(const int16_t* codes, int64_t rows, int64_t k, int64_t* sums) {
  WarpLineSums(codes, rows, k, k, 1, [&](int64_t r, long long sum) { sums[r] = sum; });
}

// The four byte GEMMs of one chunk of K, m x n int32 each.
struct ChunkSums {
  const int32_t* high_high;
  const int32_t* high_low;
  const int32_t* low_high;
  const int32_t* low_low;
};

// c (m x n) += the chunk's share; the first chunk starts from the shift's term instead of c.
__global__ void JoinKernel(ChunkSums chunk, const int64_t* sum_a, const int64_t* sum_b, int64_t m,
                           int64_t n, int64_t k, bool first, int64_t* c) {
  GridStride(m * n, [&](int64_t e) {
    const int64_t base = first ? SplitShiftTerm(sum_a[e / n], sum_b[e % n], k) : c[e];
    c[e] = base +
           SplitPartial(chunk.high_high[e], chunk.high_low[e], chunk.low_high[e], chunk.low_low[e]);
  });
}

// ---- Launchers ----

// Where each piece of the workspace starts, in bytes (every piece 256-byte aligned).
struct Layout {
  int64_t a_high, a_low, b_high, b_low, sums[4], sum_a, sum_b, bytes;
};

int64_t Align(int64_t bytes) { return (bytes + 255) / 256 * 256; }

Layout LayoutOf(const GemmShape& s) {
  Layout l;
  int64_t at = 0;
  const auto take = [&at](int64_t bytes) { return std::exchange(at, at + Align(bytes)); };
  l.a_high = take(s.m * s.k);
  l.a_low = take(s.m * s.k);
  l.b_high = take(s.n * s.k);
  l.b_low = take(s.n * s.k);
  for (int64_t& sums : l.sums) sums = take(s.m * s.n * int64_t{sizeof(int32_t)});
  l.sum_a = take(s.m * int64_t{sizeof(int64_t)});
  l.sum_b = take(s.n * int64_t{sizeof(int64_t)});
  l.bytes = at;
  return l;
}

absl::Status Split(const int16_t* codes, int64_t rows, int64_t k, int8_t* high, int8_t* low,
                   int64_t* sums, int sm_count, cudaStream_t stream) {
  SplitKernel<<<GridBlocks(rows * k, sm_count), kThreads, 0, stream>>>(codes, rows * k, high, low);
  MUPPET_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  RowSumsKernel<<<GridBlocks(rows * 32, sm_count), kThreads, 0, stream>>>(codes, rows, k, sums);
  MUPPET_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<GemmS16> GemmS16::Create() {
  absl::StatusOr<int> sm_count = CurrentSmCount();
  if (!sm_count.ok()) return sm_count.status();
  absl::StatusOr<CublasLt> lt = CublasLt::Create();
  if (!lt.ok()) return lt.status();
  return GemmS16(*std::move(lt), *sm_count);
}

absl::Status GemmS16::Run(const GemmShape& s, const int16_t* a, const int16_t* b, int64_t* c,
                          cudaStream_t stream) {
  if (absl::Status st = CheckTensorCoreGemm(s, a, b, c); !st.ok()) return st;
  const Layout l = LayoutOf(s);
  absl::StatusOr<char*> workspace = workspace_.Reserve(l.bytes, stream);
  if (!workspace.ok()) return workspace.status();
  char* w = *workspace;
  int8_t* a_high = reinterpret_cast<int8_t*>(w + l.a_high);
  int8_t* a_low = reinterpret_cast<int8_t*>(w + l.a_low);
  int8_t* b_high = reinterpret_cast<int8_t*>(w + l.b_high);
  int8_t* b_low = reinterpret_cast<int8_t*>(w + l.b_low);
  int32_t* sums[4];
  for (int i = 0; i < 4; ++i) sums[i] = reinterpret_cast<int32_t*>(w + l.sums[i]);
  int64_t* sum_a = reinterpret_cast<int64_t*>(w + l.sum_a);
  int64_t* sum_b = reinterpret_cast<int64_t*>(w + l.sum_b);
  if (absl::Status st = Split(a, s.m, s.k, a_high, a_low, sum_a, sm_count_, stream); !st.ok()) {
    return st;
  }
  if (absl::Status st = Split(b, s.n, s.k, b_high, b_low, sum_b, sm_count_, stream); !st.ok()) {
    return st;
  }
  const int32_t alpha = 1, beta = 0;
  const CublasLtTypes types{.operands = CUDA_R_8I,
                            .output = CUDA_R_32I,
                            .compute = CUBLAS_COMPUTE_32I,
                            .scale = CUDA_R_32I};
  bool first = true;
  for (const auto& [k0, k1] : ExactKChunks(s.k, 8, 8)) {
    const GemmShape chunk{.m = s.m, .n = s.n, .k = k1 - k0};
    const int8_t* a_bytes[2] = {a_high + k0, a_low + k0};
    const int8_t* b_bytes[2] = {b_high + k0, b_low + k0};
    for (int i = 0; i < 4; ++i) {  // high x high, high x low, low x high, low x low.
      if (absl::Status st = lt_.MatmulTN(types, chunk, &alpha, &beta, a_bytes[i / 2], s.k,
                                         b_bytes[i % 2], s.k, sums[i], stream);
          !st.ok()) {
        return st;
      }
    }
    JoinKernel<<<GridBlocks(s.m * s.n, sm_count_), kThreads, 0, stream>>>(
        {sums[0], sums[1], sums[2], sums[3]}, sum_a, sum_b, s.m, s.n, s.k, first, c);
    MUPPET_CUDA_RETURN_IF_ERROR(cudaGetLastError());
    first = false;
  }
  return absl::OkStatus();
}

}  // namespace muppet::cuda
