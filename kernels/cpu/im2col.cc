#include "kernels/cpu/im2col.h"

namespace muppet::kernels::internal {

void Col2Im(const ConvGeometry& g, const float* dcols, std::span<float> dx) {
  const int64_t oh = g.out_h(), ow = g.out_w(), k = g.kernel * g.kernel * g.c;
  std::fill(dx.begin(), dx.end(), 0.0f);
  // Parallel over images: no two threads add into the same element, and the order of additions
  // into each element is fixed, so the result does not depend on the thread count.
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t oy = 0; oy < oh; ++oy) {
      for (int64_t ox = 0; ox < ow; ++ox) {
        const float* in = dcols + ((n * oh + oy) * ow + ox) * k;
        for (int64_t ky = 0; ky < g.kernel; ++ky) {
          const int64_t iy = oy * g.stride - g.padding + ky;
          if (iy < 0 || iy >= g.h) continue;
          for (int64_t kx = 0; kx < g.kernel; ++kx) {
            const int64_t ix = ox * g.stride - g.padding + kx;
            if (ix < 0 || ix >= g.w) continue;
            float* out = dx.data() + ((n * g.h + iy) * g.w + ix) * g.c;
            const float* src = in + (ky * g.kernel + kx) * g.c;
            for (int64_t c = 0; c < g.c; ++c) out[c] += src[c];
          }
        }
      }
    }
  }
}

}  // namespace muppet::kernels::internal
