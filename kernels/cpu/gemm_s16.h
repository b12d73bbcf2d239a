// int16 GEMM for the 9- to 16-bit fixed-point levels: C = scale * (A x B) in FP32 from int16
// codes, with muppet's own kernels (oneDNN has no int16 GEMM): AVX512-VNNI `vpdpwssds`,
// AVX2 `vpmaddwd` with emulated saturation, and a scalar reference, picked at run time.
//
// Overflow: widen in blocks, and saturate and count where widening cannot be exact. The
// reduction runs in blocks of `block_pairs` pairs of k; within a block, each pair's exact sum
// a0*b0 + a1*b1 is added to an int32 accumulator with signed saturation (vpdpwssds semantics,
// never a silent wrap); each block's accumulator is then converted to FP32 and added to the
// output in block order. GemmS16BlockPairs picks blocks that cannot overflow for codes of up to
// 14 bits (the sum of the block's worst-case products fits int32), and blocks of 16 pairs for 15
// and 16 bits, where even one pair of full-range products can exceed int32; there a block whose
// accumulator ends at INT32_MAX or INT32_MIN counts as one saturated sum (a sum that saturates
// and comes back inside its block is not counted: the count is exact when saturation persists).
// Every instruction set computes identical results and counts.
#ifndef MUPPET_KERNELS_CPU_GEMM_S16_H_
#define MUPPET_KERNELS_CPU_GEMM_S16_H_

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "kernels/cpu/gemm_shape.h"
#include "kernels/cpu/isa.h"

namespace muppet::kernels {

// Two int16 codes as the int32 pair the int16 kernels read: lo in the low half (as in memory).
inline int32_t S16CodePair(int16_t lo, int16_t hi) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint16_t>(lo)) |
                              (static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16));
}

// Pairs of k accumulated in int32 before widening to FP32, for codes of `word_length` bits:
// the most that cannot overflow (at most 128) up to 14 bits, 16 above.
int64_t GemmS16BlockPairs(int word_length);

// C (m x n, row-major) = scale * A x B, accumulating `block_pairs` pairs of k in int32 at a time
// (see GemmS16BlockPairs); returns the number of saturated block sums. INVALID_ARGUMENT for a
// non-positive dimension or block length.
absl::StatusOr<int64_t> GemmS16(const GemmShape& shape, const int16_t* a, const int16_t* b,
                                float scale, float* c, int64_t block_pairs, Isa isa = ActiveIsa());

// The rows of an implicit A: a convolution's patches, read in place instead of unfolded into an
// im2col matrix. Each row's k codes are segments of 2 * PairsPerSegment() contiguous codes (one
// per kernel tap), segment s at SegmentOffsets()[s] codes from the row's start; offsets are even,
// or kZeroSegment for a segment that is zero in every row (a tap that only ever reads padding),
// which is skipped: its pairs still count in the blocks, so results are unchanged.
inline constexpr int64_t kZeroSegment = -1;
class S16ImplicitRows {
 public:
  virtual ~S16ImplicitRows() = default;
  // Pairs of k per segment: k = 2 * SegmentOffsets().size() * PairsPerSegment().
  virtual int64_t PairsPerSegment() const = 0;
  virtual std::span<const int64_t> SegmentOffsets() const = 0;
  // Writes where row i0 + r starts, for r < count, to starts[r], at an even code offset. Rows
  // past m start at zeros that reach past every segment. Called from several threads at once.
  virtual void Starts(int64_t i0, int count, const int16_t** starts) const = 0;
};

// GemmS16 with A given by `a` (shape.a_transposed must be false): the same results and counts,
// bit for bit, as GemmS16 on the unfolded matrix. INVALID_ARGUMENT as GemmS16, or when k is not
// a whole number of a's segments.
absl::StatusOr<int64_t> GemmS16Implicit(const GemmShape& shape, const S16ImplicitRows& a,
                                        const int16_t* b, float scale, float* c,
                                        int64_t block_pairs, Isa isa = ActiveIsa());

// The definition, with plain loops: what every path must match bit for bit.
int64_t GemmS16Reference(const GemmShape& shape, const int16_t* a, const int16_t* b, float scale,
                         float* c, int64_t block_pairs);

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_GEMM_S16_H_
