// Unfolding channels-last integer codes into im2col rows, and folding column gradients back
// (col2im): the lowering that lets the convolutions run on GEMMs.
#ifndef MUPPET_KERNELS_CPU_IM2COL_H_
#define MUPPET_KERNELS_CPU_IM2COL_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "kernels/cpu/fixed_point_conv.h"
#include "kernels/cpu/scratch.h"

namespace muppet::kernels::internal {

// Writes the patch of output pixel (oy, ox) of one channels-last image into one im2col row,
// columns in (ky, kx, c) order to match the weights' storage. Padding is code 0, exactly 0.
template <typename Code>
void CopyPatch(const ConvGeometry& g, const Code* image, int64_t oy, int64_t ox, Code* out) {
  const int64_t iy0 = oy * g.stride - g.padding, ix0 = ox * g.stride - g.padding;
  if (iy0 >= 0 && ix0 >= 0 && iy0 + g.kernel <= g.h && ix0 + g.kernel <= g.w) {
    // Inside the image, each kernel row reads KW consecutive pixels: one copy per row.
    for (int64_t ky = 0; ky < g.kernel; ++ky) {
      std::memcpy(out + ky * g.kernel * g.c, image + ((iy0 + ky) * g.w + ix0) * g.c,
                  g.kernel * g.c * sizeof(Code));
    }
    return;
  }
  std::fill(out, out + g.kernel * g.kernel * g.c, Code{0});
  for (int64_t ky = 0; ky < g.kernel; ++ky) {
    const int64_t iy = iy0 + ky;
    if (iy < 0 || iy >= g.h) continue;
    for (int64_t kx = 0; kx < g.kernel; ++kx) {
      const int64_t ix = ix0 + kx;
      if (ix < 0 || ix >= g.w) continue;
      std::memcpy(out + (ky * g.kernel + kx) * g.c, image + (iy * g.w + ix) * g.c,
                  g.c * sizeof(Code));
    }
  }
}

// Rows [begin, end) of the im2col matrix (N*OH*OW) x (KH*KW*C) of codes x, into out.
template <typename Code>
void Im2ColRows(const ConvGeometry& g, const Code* x, int64_t begin, int64_t end, Code* out) {
  const int64_t oh = g.out_h(), ow = g.out_w(), k = g.kernel * g.kernel * g.c;
  int64_t n = begin / (oh * ow), oy = begin / ow % oh, ox = begin % ow;
  for (int64_t row = begin; row < end; ++row, out += k) {
    CopyPatch(g, x + n * g.h * g.w * g.c, oy, ox, out);
    if (++ox == ow) {
      ox = 0;
      if (++oy == oh) oy = 0, ++n;
    }
  }
}

// The whole im2col matrix, written into this thread's scratch buffer (see scratch.h): it is the
// largest temporary of a convolution.
template <typename Code>
const Code* Im2Col(const ConvGeometry& g, const std::vector<Code>& x) {
  const int64_t rows = g.n * g.out_h() * g.out_w(), k = g.kernel * g.kernel * g.c;
  std::span<Code> cols = Scratch<Code>(ScratchSlot::kIm2Col, rows * k);
  constexpr int64_t kRowsPerTask = 256;
#pragma omp parallel for schedule(static)
  for (int64_t begin = 0; begin < rows; begin += kRowsPerTask) {
    Im2ColRows(g, x.data(), begin, std::min(rows, begin + kRowsPerTask), cols.data() + begin * k);
  }
  return cols.data();
}

// Folds column gradients (rows x K) back onto dx, adding every patch element to the input
// pixel it came from; parallel over images, so each element's additions keep one order.
void Col2Im(const ConvGeometry& g, const float* dcols, std::span<float> dx);

}  // namespace muppet::kernels::internal

#endif  // MUPPET_KERNELS_CPU_IM2COL_H_
