// Grow-only, per-thread scratch buffers for the kernels' large temporaries (packed GEMM panels,
// im2col matrices). A fresh buffer of that size comes from mmap, and every new page then costs a
// page fault: measured on these VMs at about 10 us per 4 KiB page, which made one 58 MB
// temporary cost 140 ms, a hundred times the convolution it served. Reusing the pages makes
// that cost disappear after the first call.
#ifndef MUPPET_KERNELS_CPU_SCRATCH_H_
#define MUPPET_KERNELS_CPU_SCRATCH_H_

#include <vector>

namespace muppet::kernels {

// Named scratch slots, so that buffers alive at the same time never share one.
enum class ScratchSlot {
  kGemmPackedA,
  kGemmPackedB,
  kIm2Col,
  kColumnGradients,
  kBlockProduct,
  kBlockSum,
  kCount
};

// This thread's buffer of T for `slot`, resized to `n` elements. Its contents are unspecified;
// growing reallocates, shrinking keeps the memory. Valid until the next call for the same slot
// and type on this thread.
template <typename T>
std::vector<T>& Scratch(ScratchSlot slot, size_t n) {
  thread_local std::vector<T> buffers[static_cast<int>(ScratchSlot::kCount)];
  std::vector<T>& buffer = buffers[static_cast<int>(slot)];
  buffer.resize(n);
  return buffer;
}

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_SCRATCH_H_
