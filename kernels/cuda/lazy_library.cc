#include "kernels/cuda/lazy_library.h"

#include <dlfcn.h>

#include "absl/strings/str_cat.h"

namespace muppet::cuda {

void* LazyLibrary::Symbol(const char* symbol) {
  std::call_once(opened_, [&] {
    handle_ = dlopen(soname_, RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = dlerror();
    }
  });
  if (handle_ == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  dlerror();  // Clear: a null address is an error only with dlerror set.
  void* address = dlsym(handle_, symbol);
  if (address == nullptr) {
    const char* error = dlerror();
    error_ = error != nullptr ? error : "null symbol";
  }
  return address;
}

absl::Status LazyLibrary::Missing(const char* symbol) {
  std::lock_guard<std::mutex> lock(mu_);
  return absl::FailedPreconditionError(absl::StrCat(soname_, " is needed for ", symbol,
                                                    " (CUDA jobs) but cannot be loaded: ", error_));
}

}  // namespace muppet::cuda
