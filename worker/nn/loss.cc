#include "worker/nn/loss.h"

#include <algorithm>
#include <cmath>

#include "base/check.h"
#include "worker/nn/parallel.h"

namespace muppet {

SoftmaxCrossEntropy::Result SoftmaxCrossEntropy::Forward(const Tensor& logits,
                                                         std::span<const int32_t> labels) {
  const int64_t n = logits.dim(0), k = logits.size() / n;
  MUPPET_CHECK(static_cast<int64_t>(labels.size()) == n)
      << labels.size() << " labels, " << n << " rows";
  labels_ = labels;
  probabilities_.Resize({n, k});
  // Per row: [loss, correct], reduced in a fixed order.
  const std::vector<double> totals = ReduceRows(n, 2, [&](int64_t row, double* acc) {
    const float* z = logits.data() + row * k;
    float* p = probabilities_.data() + row * k;
    const int32_t label = labels[row];
    MUPPET_CHECK(label >= 0 && label < k) << "label " << label << " with " << k << " classes";
    const float max = *std::max_element(z, z + k);
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += p[j] = std::exp(z[j] - max);
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j < k; ++j) p[j] *= inv;
    // -log softmax = log(sum) - (z - max), exact even when p underflows.
    acc[0] += std::log(sum) - (z[label] - max);
    acc[1] += (std::max_element(z, z + k) - z) == label;
  });
  return {.loss = totals[0] / n, .correct = static_cast<int64_t>(totals[1])};
}

const Tensor& SoftmaxCrossEntropy::Backward(int64_t batch) {
  const int64_t n = probabilities_.dim(0), k = probabilities_.dim(1);
  grad_.Resize({n, k});
  const float inv_n = 1.0f / static_cast<float>(batch > 0 ? batch : n);
  ParallelFor(
      n,
      [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
          for (int64_t j = 0; j < k; ++j) {
            grad_[row * k + j] = (probabilities_[row * k + j] - (j == labels_[row])) * inv_n;
          }
        }
      },
      k);
  return grad_;
}

}  // namespace muppet
