// A convolution's input as zero-padded images, for kernels that read patches in place: every
// patch lies inside, each kernel tap is one fixed offset from its patch's start, and a patch past
// the last pixel reads only (stored) zeros.
#ifndef MUPPET_KERNELS_CPU_PADDED_IMAGES_H_
#define MUPPET_KERNELS_CPU_PADDED_IMAGES_H_

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/cpu/fixed_point_conv.h"
#include "kernels/cpu/scratch.h"

namespace muppet::kernels::internal {

// Channels-last codes x of g's input, copied as store(code) with `padding` pixels of `zero`
// around each image and a tail of `zero` (a patch's reach and 16 pixels more): one pass over x,
// into this thread's scratch (valid until the next PaddedImages of the same type on it).
template <typename Stored>
class PaddedImages {
 public:
  template <typename Code, typename Store>
  PaddedImages(const ConvGeometry& g, const Code* x, Stored zero, Store store)
      : g_(g), h_(g.h + 2 * g.padding), w_(g.w + 2 * g.padding) {
    // A tap is live where some output pixel reads it inside the image: on inputs smaller than
    // the kernel (alexnet's 1x1 maps under 3x3 kernels) most taps only ever read padding.
    const auto live = [&](int64_t k, int64_t in, int64_t out) {
      for (int64_t o = 0; o < out; ++o) {
        const int64_t i = o * g.stride - g.padding + k;
        if (i >= 0 && i < in) return true;
      }
      return false;
    };
    for (int64_t ky = 0; ky < g.kernel; ++ky) {
      for (int64_t kx = 0; kx < g.kernel; ++kx) {
        tap_offsets_.push_back((ky * w_ + kx) * g.c);
        live_taps_.push_back(live(ky, g.h, g.out_h()) && live(kx, g.w, g.out_w()));
      }
    }
    // The tail: one patch's reach, and 16 pixels' steps more for kernels that read 16 patches a
    // fixed step apart, some past the last pixel (conv_s8_forward_amx.cc).
    const int64_t image = h_ * w_ * g.c, reach = tap_offsets_.back() + g.c + 16 * g.stride * g.c;
    std::span<Stored> padded = Scratch<Stored>(ScratchSlot::kPaddedInput, g.n * image + reach);
    codes_ = padded.data();
    zeros_ = codes_ + g.n * image;
    std::fill(padded.begin() + g.n * image, padded.end(), zero);
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < g.n * h_; ++row) {
      Stored* out = codes_ + row * w_ * g.c;
      const int64_t y = row % h_ - g.padding;
      if (y < 0 || y >= g.h) {
        std::fill(out, out + w_ * g.c, zero);
        continue;
      }
      const Code* in = x + ((row / h_ * g.h + y) * g.w) * g.c;
      std::fill(out, out + g.padding * g.c, zero);
      std::transform(in, in + g.w * g.c, out + g.padding * g.c, store);
      std::fill(out + (g.padding + g.w) * g.c, out + w_ * g.c, zero);
    }
  }

  // Where the patch of output pixel (oy, ox) of image n begins; zeros from the image past the
  // last on.
  const Stored* Patch(int64_t n, int64_t oy, int64_t ox) const {
    if (n >= g_.n) return zeros_;
    return codes_ + ((n * h_ + oy * g_.stride) * w_ + ox * g_.stride) * g_.c;
  }

  // A walk over the patches of consecutive output pixels from `begin` on. Along an output row the
  // patches are a fixed step apart, so a full address is computed once a row and the pixel's
  // place divided out only where the walk starts (a tile's patches computed each pixel were
  // 1.6% of an 8-bit resnet20 step, and the divisions a tile took most of what remained).
  class Walk {
   public:
    Walk(const PaddedImages& x, int64_t begin)
        : x_(x),
          oh_(x.g_.out_h()),
          ow_(x.g_.out_w()),
          step_(x.g_.stride * x.g_.c),
          n_(begin / (oh_ * ow_)),
          oy_(begin / ow_ % oh_),
          ox_(begin % ow_),
          patch_(x.Patch(n_, oy_, ox_)) {}

    // The patches of the next `padded` pixels into out: the first `count` of them, then zeros'.
    void Next(int64_t count, int64_t padded, const Stored** out) {
      for (int64_t p = 0; p < padded; ++p) {
        out[p] = p < count ? patch_ : x_.zeros_;
        patch_ += step_;
        if (++ox_ == ow_) {
          ox_ = 0;
          if (++oy_ == oh_) oy_ = 0, ++n_;
          patch_ = x_.Patch(n_, oy_, 0);
          if (n_ >= x_.g_.n) step_ = 0;  // Past the last image: zeros from here on.
        }
      }
    }

   private:
    const PaddedImages& x_;
    const int64_t oh_, ow_;
    int64_t step_, n_, oy_, ox_;
    const Stored* patch_;
  };

  // The patches of output pixels [begin, begin + count) into out[0, count), and zeros' for the
  // rest of out up to `padded` entries.
  void Patches(int64_t begin, int64_t count, int64_t padded, const Stored** out) const {
    Walk(*this, begin).Next(count, padded, out);
  }

  // Of each kernel tap from its patch's start, in codes.
  const std::vector<int64_t>& tap_offsets() const { return tap_offsets_; }
  // Whether some output pixel reads tap t inside the image; a dead tap reads only zeros.
  bool live_tap(int64_t t) const { return live_taps_[t]; }

 private:
  const ConvGeometry g_;
  const int64_t h_, w_;  // Padded.
  Stored* codes_;
  const Stored* zeros_;
  std::vector<int64_t> tap_offsets_;
  std::vector<bool> live_taps_;
};

// What the in-place backward-weights kernels read of x for a run of `pixels` output pixels:
// pixel p's tap t reads its `channels` codes at patches[p] + tap_offsets[t] (patches rounded up
// to the kernel's group of pixels, zeros past the last), into dW rows of `outputs` channels
// (padded_outputs: rounded up to the kernel's tile).
// The units (16 channels of one tap, unit u = tap * C / 16 + group) of live taps are listed in
// `units` (unit_count of them); the dW columns of the others are zero.
template <typename Stored>
struct InPlacePatches {
  const Stored* const* patches;
  const int64_t* tap_offsets;
  int64_t pixels, outputs, padded_outputs, taps, channels;
  const int64_t* units;
  int64_t unit_count;
};

// Whether an in-place backward-weights pass over `pieces` blocks of pixels runs them one after
// another, each spread over the threads, rather than whole blocks per thread: below four blocks
// a thread, whole blocks leave threads idle (alexnet's 128-pixel layers have one; resnet20's
// 64-channel layer 7, 4 and 3 on two threads).
inline bool SpreadEachBlock(int64_t pieces) { return pieces < 4 * omp_get_max_threads(); }

// The units of x's live taps, for channels in multiples of 16.
template <typename Stored>
std::vector<int64_t> LiveUnits(const PaddedImages<Stored>& x, int64_t taps, int64_t channels) {
  std::vector<int64_t> units;
  for (int64_t t = 0; t < taps; ++t) {
    if (!x.live_tap(t)) continue;
    for (int64_t g = 0; g < channels / 16; ++g) units.push_back(t * channels / 16 + g);
  }
  return units;
}

// The patches of output pixels [begin, begin + n) of x, padded to `padded_pixels`, in this
// thread's scratch, for dW rows of g.o channels padded to a multiple of `tile_rows`, and the live
// units (LiveUnits, which must outlive the result).
template <typename Stored>
InPlacePatches<Stored> PatchesOf(const ConvGeometry& g, const PaddedImages<Stored>& x,
                                 const std::vector<int64_t>& live_units, int64_t begin, int64_t n,
                                 int64_t padded_pixels, int64_t tile_rows) {
  std::span<const Stored*> patches = Scratch<const Stored*>(ScratchSlot::kPatches, padded_pixels);
  x.Patches(begin, n, padded_pixels, patches.data());
  return {.patches = patches.data(),
          .tap_offsets = x.tap_offsets().data(),
          .pixels = n,
          .outputs = g.o,
          .padded_outputs = (g.o + tile_rows - 1) / tile_rows * tile_rows,
          .taps = g.kernel * g.kernel,
          .channels = g.c,
          .units = live_units.data(),
          .unit_count = static_cast<int64_t>(live_units.size())};
}

}  // namespace muppet::kernels::internal

#endif  // MUPPET_KERNELS_CPU_PADDED_IMAGES_H_
