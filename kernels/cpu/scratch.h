// Grow-only, per-thread scratch buffers for the kernels' large temporaries (packed GEMM panels,
// im2col matrices). A fresh buffer of that size comes from mmap, and every new page then costs a
// page fault: measured on these VMs at about 10 us per 4 KiB page, which made one 58 MB
// temporary cost 140 ms, a hundred times the convolution it served. Reusing the pages makes
// that cost disappear after the first call.
#ifndef MUPPET_KERNELS_CPU_SCRATCH_H_
#define MUPPET_KERNELS_CPU_SCRATCH_H_

#include <cstddef>
#include <memory>
#include <span>
#include <type_traits>

namespace muppet::kernels {

// Named scratch slots, so that buffers alive at the same time never share one.
enum class ScratchSlot {
  kGemmPackedA,
  kGemmPackedB,
  kIm2Col,
  kPaddedInput,
  kColumnGradients,
  kBlockProduct,
  kBlockSum,
  kBlockTotal,
  kPixelPairs,
  kPatches,
  kAffineChunk,
  kCount
};

// This thread's buffer of `n` elements of T for `slot`. Its contents are unspecified: growing
// reallocates without initialising (a zero fill would cost a pass over memory on every call that
// follows a smaller one), shrinking keeps the memory. Valid until the next call for the same
// slot and type on this thread. T must be trivially constructible.
template <typename T>
std::span<T> Scratch(ScratchSlot slot, size_t n) {
  static_assert(std::is_trivially_default_constructible_v<T>);
  struct Buffer {
    std::unique_ptr<T[]> data;
    size_t capacity = 0;
  };
  thread_local Buffer buffers[static_cast<int>(ScratchSlot::kCount)];
  Buffer& buffer = buffers[static_cast<int>(slot)];
  if (n > buffer.capacity) {
    buffer.data.reset(new T[n]);  // Default-initialised: no zero fill.
    buffer.capacity = n;
  }
  return {buffer.data.get(), n};
}

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_SCRATCH_H_
