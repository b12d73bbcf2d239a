// Helpers shared by the fixed-point layer operations (linear and convolution).
#ifndef MUPPET_KERNELS_CPU_FIXED_POINT_INTERNAL_H_
#define MUPPET_KERNELS_CPU_FIXED_POINT_INTERNAL_H_

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "kernels/cpu/fixed_point.h"
#include "kernels/cpu/gemm_shape.h"

namespace muppet::kernels::internal {

// INVALID_ARGUMENT unless word_length is in [2, 16].
absl::Status CheckWordLength(int word_length);

// Sets out's word length and exponent and sizes its codes for n elements (int8 up to 8 bits,
// int16 above; the other width's buffer emptied, keeping its capacity).
void PrepareCodes(int word_length, int exponent, int64_t n, Quantized& out);

// INVALID_ARGUMENT unless `bias` is empty or has `expected` elements; `name` names it.
absl::Status CheckBiasSize(std::span<const float> bias, int64_t expected, const char* name);

// y[r][j] += bias[j] for a rows x cols matrix; nothing for an empty bias. With a `range` and a
// bias, also gathers y's range.
void AddBias(std::span<const float> bias, int64_t rows, int64_t cols, std::span<float> y,
             RangeScan* range = nullptr);

// y[r][j] = y[r][j] * scale + bias[j] (no bias term for an empty bias), in one pass; with a
// `range`, also gathers the range of the y written (RangeScan), a block of rows at a time while
// it is in cache.
void ScaleAndAddBias(float scale, std::span<const float> bias, int64_t rows, int64_t cols,
                     std::span<float> y, RangeScan* range = nullptr);

// y[i] = y[i] * scale + addend[i] (no addend term for an empty addend, which must otherwise have
// y's size), in one pass.
void ScaleAndAdd(float scale, std::span<const float> addend, std::span<float> y);

// INVALID_ARGUMENT naming every size when a, b or out is not the size the shape implies, or when
// a and b have different word lengths.
absl::Status CheckCodes(const Quantized& a, int64_t a_size, const char* a_name, const Quantized& b,
                        int64_t b_size, const char* b_name, std::span<float> out, int64_t out_size);

// This thread's reusable buffer for quantising operand `operand` of an FP32-level op.
Quantized& OperandBuffer(Operand operand);

// The FP32 level of an op: quantises `a` and `b` as operands of one step, each on its own stream
// into this thread's buffer, then runs `op(qa, qb)` on the codes. Returns op's saturations plus
// the codes clamped while quantising.
template <typename Op>
absl::StatusOr<int64_t> OnQuantizedOperands(const FixedPointOptions& options,
                                            std::span<const float> a, Operand a_operand,
                                            std::span<const float> b, Operand b_operand, Op op) {
  Quantized& qa = OperandBuffer(a_operand);
  Quantized& qb = OperandBuffer(b_operand);
  if (absl::Status s = QuantizeOperand(options, a, a_operand, qa); !s.ok()) return s;
  if (absl::Status s = QuantizeOperand(options, b, b_operand, qb); !s.ok()) return s;
  absl::StatusOr<int64_t> saturated = op(qa, qb);
  if (!saturated.ok()) return saturated;
  return qa.saturated + qb.saturated + *saturated;
}

// Codes of a quantised matrix, wherever they are stored.
struct CodesView {
  int word_length = 0;
  int exponent = 0;
  const int8_t* s8 = nullptr;    // When word_length <= 8.
  const int16_t* s16 = nullptr;  // Otherwise.
};

inline CodesView View(const Quantized& q) {
  return {q.word_length, q.exponent, q.s8.data(), q.s16.data()};
}

// c = 2^-(sa + sb) * A x B on the int8 or int16 GEMM; returns the saturated sums.
absl::StatusOr<int64_t> Multiply(const GemmShape& shape, const CodesView& a, const CodesView& b,
                                 float* c);

// out[j] = 2^-s * sum over i of code(i, j), for a rows x cols quantised matrix.
void ColumnSums(const Quantized& q, int64_t rows, int64_t cols, std::span<float> out);

}  // namespace muppet::kernels::internal

#endif  // MUPPET_KERNELS_CPU_FIXED_POINT_INTERNAL_H_
