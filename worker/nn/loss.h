// Softmax cross-entropy, the training loss: mean over the batch of -log softmax(logits)[label].
#ifndef MUPPET_WORKER_NN_LOSS_H_
#define MUPPET_WORKER_NN_LOSS_H_

#include <cstdint>
#include <span>

#include "worker/tensor/tensor.h"

namespace muppet {

class SoftmaxCrossEntropy {
 public:
  struct Result {
    double loss = 0;      // Mean over the batch.
    int64_t correct = 0;  // Rows whose arg-max equals the label.
  };

  // Computes the loss of `logits` (N, K) against `labels` (N values in [0, K)) and keeps the
  // softmax for Backward.
  Result Forward(const Tensor& logits, std::span<const int32_t> labels);

  // Returns dLoss/dLogits = (softmax - onehot(label)) / batch for the last Forward, where
  // `batch` is the global batch (data parallel: every rank's rows together, so that the ranks'
  // gradients sum to the global batch's mean) or, when 0, this Forward's N rows.
  const Tensor& Backward(int64_t batch = 0);

 private:
  Tensor probabilities_;
  std::span<const int32_t> labels_;
  Tensor grad_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_NN_LOSS_H_
