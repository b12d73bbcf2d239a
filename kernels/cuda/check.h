// Turns CUDA runtime errors into absl::Status, so that no CUDA error crosses a module boundary
// unchecked. Every CUDA call in muppet goes through one of these macros.
#ifndef MUPPET_KERNELS_CUDA_CHECK_H_
#define MUPPET_KERNELS_CUDA_CHECK_H_

#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace muppet::cuda {

// Returns OK for cudaSuccess, else an INTERNAL status naming the failed expression and error.
inline absl::Status ToStatus(cudaError_t error, const char* expr, const char* file, int line) {
  if (error == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(file, ":", line, ": ", expr,
                                          " failed: ", cudaGetErrorName(error), " (",
                                          cudaGetErrorString(error), ")"));
}

}  // namespace muppet::cuda

// Evaluates a CUDA runtime call and returns its error as an absl::Status from the enclosing
// function.
#define MUPPET_CUDA_RETURN_IF_ERROR(expr)                                                          \
  do {                                                                                             \
    if (absl::Status _st = ::muppet::cuda::ToStatus((expr), #expr, __FILE__, __LINE__); !_st.ok()) \
      return _st;                                                                                  \
  } while (0)

#endif  // MUPPET_KERNELS_CUDA_CHECK_H_
