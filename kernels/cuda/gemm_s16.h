// int16 x int16 -> int64 GEMM on the integer tensor cores, exact: C (m x n, int64, row-major) =
// A (m x k) * B (n x k)^T with A and B row-major codes of 9 to 16 bits (any int16), for the 14-
// and 16-bit levels, where FP16's 11-bit significand cannot hold the codes (gemm_f16.h does 9-12
// bits). Each code is split into two int8 bytes (byte_split.h); per chunk of K (ExactKChunks, so
// no int32 sum can overflow) four IMMA GEMMs multiply the bytes, high x high, high x low,
// low x high and low x low, and a kernel joins their int32 sums into C in int64 with the shift's
// term from the codes' row sums. The tensor cores do four times an int8 GEMM's work, plus the
// split and the joins; gemm_rules.h has the shape rules.
#ifndef MUPPET_KERNELS_CUDA_GEMM_S16_H_
#define MUPPET_KERNELS_CUDA_GEMM_S16_H_

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"
#include "kernels/cuda/cublaslt.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/gemm_rules.h"

namespace muppet::cuda {

// A cuBLASLt handle and the split codes' workspace, for one stream at a time. Not thread-safe.
class GemmS16 {
 public:
  // INTERNAL naming the call when cuBLASLt, its workspace or the device's attributes cannot be
  // had.
  static absl::StatusOr<GemmS16> Create();

  // Enqueues C = A * B^T on `stream` (device pointers), exact for any K. INVALID_ARGUMENT for a
  // shape or pointer CheckTensorCoreGemm refuses (C 16-byte aligned too); INTERNAL naming the
  // CUDA or cuBLASLt call that failed, a workspace allocation included. The workspace, 2 (m + n) k
  // bytes of split codes, 16 m n of int32 sums and 8 (m + n) of row sums, grows to the largest
  // problem seen; growing waits for `stream` first. Asynchronous: C is ready once the stream
  // reaches this point, and A and B must stay valid until then.
  absl::Status Run(const GemmShape& shape, const int16_t* a, const int16_t* b, int64_t* c,
                   cudaStream_t stream);

 private:
  GemmS16(CublasLt lt, int sm_count) : lt_(std::move(lt)), sm_count_(sm_count) {}

  CublasLt lt_;
  int sm_count_ = 0;
  DeviceWorkspace workspace_;
};

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_GEMM_S16_H_
