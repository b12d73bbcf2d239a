// Shared libraries opened at their first use (dlopen) instead of at program start: cuDNN and
// cuBLASLt, about 1 GB, which only CUDA jobs need, so that muppet's binaries also start where
// they are not installed (a CPU-only image or machine) and a CUDA job there fails naming the
// missing library. Plain C++.
#ifndef MUPPET_KERNELS_CUDA_LAZY_LIBRARY_H_
#define MUPPET_KERNELS_CUDA_LAZY_LIBRARY_H_

#include <mutex>
#include <string>

#include "absl/status/status.h"

namespace muppet::cuda {

class LazyLibrary {
 public:
  // `soname` as dlopen takes it, e.g. "libcudnn.so.9". Opens nothing yet.
  explicit LazyLibrary(const char* soname) : soname_(soname) {}
  LazyLibrary(const LazyLibrary&) = delete;
  LazyLibrary& operator=(const LazyLibrary&) = delete;

  // The address of `symbol`, opening the library at the first call; null when the library or
  // the symbol cannot be had (Missing says why). Thread-safe.
  void* Symbol(const char* symbol);

  // FAILED_PRECONDITION naming the library, `symbol` and the loader's reason, for a Symbol that
  // returned null.
  absl::Status Missing(const char* symbol);

 private:
  const char* soname_;
  std::once_flag opened_;
  void* handle_ = nullptr;
  std::mutex mu_;
  std::string error_;  // The loader's last error; guarded by mu_.
};

}  // namespace muppet::cuda

// The function `fn` of `library` as a pointer of fn's own type (declared by the library's
// header), looked up once per call site; null when missing.
#define MUPPET_LAZY_FUNCTION(library, fn)                                                  \
  ([]() {                                                                                  \
    static const auto resolved = reinterpret_cast<decltype(&::fn)>((library).Symbol(#fn)); \
    return resolved;                                                                       \
  }())

#endif  // MUPPET_KERNELS_CUDA_LAZY_LIBRARY_H_
