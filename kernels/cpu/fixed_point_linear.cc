#include "kernels/cpu/fixed_point_linear.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/fixed_point_internal.h"
#include "kernels/cpu/gemm_s16.h"
#include "kernels/cpu/gemm_s8.h"

namespace muppet::kernels {
namespace internal {
namespace {

// Row by row, so the inner loop runs over contiguous codes and vectorises. Integer sums are
// exact, so splitting the rows across threads cannot change the result.
template <typename Code>
void SumColumns(const Code* codes, int64_t rows, int64_t cols, int64_t* sums) {
  std::fill(sums, sums + cols, 0);
#pragma omp parallel if (rows * cols >= (1 << 16))
  {
    std::vector<int64_t> partial(cols, 0);
#pragma omp for schedule(static) nowait
    for (int64_t i = 0; i < rows; ++i) {
      const Code* row = codes + i * cols;
      for (int64_t j = 0; j < cols; ++j) partial[j] += row[j];
    }
#pragma omp critical
    for (int64_t j = 0; j < cols; ++j) sums[j] += partial[j];
  }
}

}  // namespace

absl::Status CheckBiasSize(std::span<const float> bias, int64_t expected, const char* name) {
  if (bias.empty() || static_cast<int64_t>(bias.size()) == expected) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(name, " has ", bias.size(), " elements, expected ", expected));
}

void AddBias(std::span<const float> bias, int64_t rows, int64_t cols, std::span<float> y,
             RangeScan* range) {
  if (!bias.empty()) ScaleAndAddBias(1.0f, bias, rows, cols, y, range);  // x * 1 is exact.
}

void ScaleAndAddBias(float scale, std::span<const float> bias, int64_t rows, int64_t cols,
                     std::span<float> y, RangeScan* range) {
  // Rows a block, scanned for the range right after they are written.
  const int64_t block = std::max<int64_t>(1, kInCacheElements / cols);
  const int threads = rows * cols >= (1 << 16) ? omp_get_max_threads() : 1;
  std::vector<RangeScan> scans(threads);
  const auto rows_of_thread = [&](int t) {
    const int64_t first = rows * t / threads, last = rows * (t + 1) / threads;
    for (int64_t r0 = first; r0 < last; r0 += block) {
      const int64_t r1 = std::min(last, r0 + block);
      for (int64_t r = r0; r < r1; ++r) {
        float* row = y.data() + r * cols;
        if (bias.empty()) {
          for (int64_t j = 0; j < cols; ++j) row[j] *= scale;
        } else {
          for (int64_t j = 0; j < cols; ++j) row[j] = row[j] * scale + bias[j];
        }
      }
      if (range != nullptr) scans[t].Add(y.data() + r0 * cols, (r1 - r0) * cols);
    }
  };
  if (threads == 1) {
    rows_of_thread(0);
  } else {
#pragma omp parallel num_threads(threads)
    rows_of_thread(omp_get_thread_num());
  }
  if (range == nullptr) return;
  for (const RangeScan& scan : scans) range->Merge(scan);
}

void ScaleAndAdd(float scale, std::span<const float> addend, std::span<float> y) {
  const int64_t n = static_cast<int64_t>(y.size());
  float* out = y.data();
  if (addend.empty()) {
#pragma omp parallel for schedule(static) if (n >= (1 << 16))
    for (int64_t i = 0; i < n; ++i) out[i] *= scale;
    return;
  }
  const float* add = addend.data();
#pragma omp parallel for schedule(static) if (n >= (1 << 16))
  for (int64_t i = 0; i < n; ++i) out[i] = out[i] * scale + add[i];
}

absl::Status CheckCodes(const Quantized& a, int64_t a_size, const char* a_name, const Quantized& b,
                        int64_t b_size, const char* b_name, std::span<float> out,
                        int64_t out_size) {
  if (a.size() != a_size || b.size() != b_size || static_cast<int64_t>(out.size()) != out_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("sizes disagree: ", a_name, " has ", a.size(), " (expected ", a_size, "), ",
                     b_name, " has ", b.size(), " (expected ", b_size, "), output has ", out.size(),
                     " (expected ", out_size, ")"));
  }
  if (a.word_length != b.word_length || a.word_length < 2 || a.word_length > 16) {
    return absl::InvalidArgumentError(absl::StrCat("word lengths disagree: ", a_name, " has ",
                                                   a.word_length, ", ", b_name, " has ",
                                                   b.word_length));
  }
  return absl::OkStatus();
}

Quantized& OperandBuffer(Operand operand) {
  thread_local Quantized buffers[3];
  return buffers[static_cast<int>(operand)];
}

absl::StatusOr<int64_t> Multiply(const GemmShape& shape, const CodesView& a, const CodesView& b,
                                 float* c) {
  const float scale = std::ldexp(1.0f, -(a.exponent + b.exponent));
  if (a.word_length <= 8) {
    if (absl::Status s = GemmS8(shape, a.s8, b.s8, scale, c); !s.ok()) return s;
    return int64_t{0};  // The int8 GEMM cannot saturate (see gemm_s8.h).
  }
  return GemmS16(shape, a.s16, b.s16, scale, c, GemmS16BlockPairs(a.word_length));
}

void ColumnSums(const Quantized& q, int64_t rows, int64_t cols, std::span<float> out) {
  std::vector<int64_t> sums(cols);
  if (q.word_length <= 8) {
    SumColumns(q.s8.data(), rows, cols, sums.data());
  } else {
    SumColumns(q.s16.data(), rows, cols, sums.data());
  }
  const float scale = std::ldexp(1.0f, -q.exponent);
  for (int64_t j = 0; j < cols; ++j) out[j] = static_cast<float>(sums[j]) * scale;
}

}  // namespace internal

using internal::CheckBiasSize;
using internal::CheckCodes;
using internal::Multiply;
using internal::OnQuantizedOperands;
using internal::View;

absl::StatusOr<int64_t> LinearForward(const Quantized& x, const Quantized& w,
                                      std::span<const float> bias, int64_t n, int64_t f,
                                      int64_t out, std::span<float> y) {
  if (absl::Status s = CheckCodes(x, n * f, "x", w, out * f, "w", y, n * out); !s.ok()) return s;
  if (absl::Status s = CheckBiasSize(bias, out, "bias"); !s.ok()) return s;
  absl::StatusOr<int64_t> saturated =
      Multiply({.m = n, .n = out, .k = f, .b_transposed = true}, View(x), View(w), y.data());
  if (saturated.ok()) internal::AddBias(bias, n, out, y);
  return saturated;
}

absl::StatusOr<int64_t> LinearBackwardData(const Quantized& dy, const Quantized& w, int64_t n,
                                           int64_t f, int64_t out, std::span<float> dx) {
  if (absl::Status s = CheckCodes(dy, n * out, "dy", w, out * f, "w", dx, n * f); !s.ok()) {
    return s;
  }
  return Multiply({.m = n, .n = f, .k = out}, View(dy), View(w), dx.data());
}

absl::StatusOr<int64_t> LinearBackwardWeights(const Quantized& dy, const Quantized& x, int64_t n,
                                              int64_t f, int64_t out, std::span<float> dw,
                                              std::span<float> db) {
  if (absl::Status s = CheckCodes(dy, n * out, "dy", x, n * f, "x", dw, out * f); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckBiasSize(db, out, "db"); !s.ok()) return s;
  absl::StatusOr<int64_t> saturated =
      Multiply({.m = out, .n = f, .k = n, .a_transposed = true}, View(dy), View(x), dw.data());
  if (saturated.ok() && !db.empty()) internal::ColumnSums(dy, n, out, db);
  return saturated;
}

// The FP32 level: quantise each operand on its own stream, then the op on codes.

absl::StatusOr<int64_t> LinearForward(const FixedPointOptions& o, std::span<const float> x,
                                      std::span<const float> w, std::span<const float> bias,
                                      int64_t n, int64_t f, int64_t out, std::span<float> y) {
  return OnQuantizedOperands(o, x, Operand::kInput, w, Operand::kWeights,
                             [&](const Quantized& qx, const Quantized& qw) {
                               return LinearForward(qx, qw, bias, n, f, out, y);
                             });
}

absl::StatusOr<int64_t> LinearBackwardData(const FixedPointOptions& o, std::span<const float> dy,
                                           std::span<const float> w, int64_t n, int64_t f,
                                           int64_t out, std::span<float> dx) {
  return OnQuantizedOperands(o, dy, Operand::kGradient, w, Operand::kWeights,
                             [&](const Quantized& qdy, const Quantized& qw) {
                               return LinearBackwardData(qdy, qw, n, f, out, dx);
                             });
}

absl::StatusOr<int64_t> LinearBackwardWeights(const FixedPointOptions& o, std::span<const float> dy,
                                              std::span<const float> x, int64_t n, int64_t f,
                                              int64_t out, std::span<float> dw,
                                              std::span<float> db) {
  return OnQuantizedOperands(o, dy, Operand::kGradient, x, Operand::kInput,
                             [&](const Quantized& qdy, const Quantized& qx) {
                               return LinearBackwardWeights(qdy, qx, n, f, out, dw, db);
                             });
}

}  // namespace muppet::kernels
