// A convolution by its definition, for the tests of the GPU convolutions: every product term,
// named by the indices of the output, input and weight it joins. Slow and plain; test-only.
#ifndef MUPPET_KERNELS_CUDA_CONV_TERMS_H_
#define MUPPET_KERNELS_CUDA_CONV_TERMS_H_

#include <cstdint>

#include "kernels/common/conv_geometry.h"

namespace muppet::cuda {

// f(y index, x index, w index) for every product term of the convolution, channels-last
// (conv_geometry.h): y[yi] gets x[xi] w[wi] in the forward pass, dx[xi] gets dy[yi] w[wi] in
// backward-data and dw[wi] gets dy[yi] x[xi] in backward-weights.
template <typename F>
void ForEachConvTerm(const kernels::ConvGeometry& g, F&& f) {
  int64_t pixel = 0;
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t oy = 0; oy < g.out_h(); ++oy) {
      for (int64_t ox = 0; ox < g.out_w(); ++ox, ++pixel) {
        for (int64_t o = 0; o < g.o; ++o) {
          for (int64_t ky = 0; ky < g.kernel; ++ky) {
            const int64_t iy = oy * g.stride - g.padding + ky;
            if (iy < 0 || iy >= g.h) continue;
            for (int64_t kx = 0; kx < g.kernel; ++kx) {
              const int64_t ix = ox * g.stride - g.padding + kx;
              if (ix < 0 || ix >= g.w) continue;
              for (int64_t c = 0; c < g.c; ++c) {
                f(pixel * g.o + o, ((n * g.h + iy) * g.w + ix) * g.c + c,
                  ((o * g.kernel + ky) * g.kernel + kx) * g.c + c);
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_CONV_TERMS_H_
