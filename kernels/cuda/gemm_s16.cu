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
  const int64_t codes_a = s.m * s.k, codes_b = s.n * s.k, sum_bytes = s.m * s.n * 4;
  absl::StatusOr<char*> workspace =
      workspace_.Reserve(WorkspaceCarver::Bytes(codes_a, codes_a, codes_b, codes_b, sum_bytes,
                                                sum_bytes, sum_bytes, sum_bytes, s.m * 8, s.n * 8),
                         stream);
  if (!workspace.ok()) return workspace.status();
  WorkspaceCarver carve(*workspace);
  int8_t* a_high = carve.Take<int8_t>(codes_a);
  int8_t* a_low = carve.Take<int8_t>(codes_a);
  int8_t* b_high = carve.Take<int8_t>(codes_b);
  int8_t* b_low = carve.Take<int8_t>(codes_b);
  int32_t* sums[4];
  for (int32_t*& sum : sums) sum = carve.Take<int32_t>(s.m * s.n);
  int64_t* sum_a = carve.Take<int64_t>(s.m);
  int64_t* sum_b = carve.Take<int64_t>(s.n);
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
