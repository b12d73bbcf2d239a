// BatchNorm2d over channels-last tensors: batch statistics in training (with running averages
// for inference, as PyTorch: momentum 0.1, unbiased running variance), running statistics in
// evaluation. Statistics accumulate in double so that large batches stay accurate.
//
// With `relu`, a ReLU follows in the same passes over memory (forward and backward): the two
// element-wise passes a separate ReLU layer would cost are a fifth of a ResNet's step here.
//
// After a convolution at a fixed-point level, the input is read as the convolution's codes
// (layer.h): each code times 2^-s is exactly the FP32 value it stands for, so the results are the
// same bits, from a quarter (8-bit) or half (9-16-bit) of the input traffic.
#ifndef MUPPET_WORKER_NN_BATCH_NORM_H_
#define MUPPET_WORKER_NN_BATCH_NORM_H_

#include <cstdint>
#include <vector>

#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/fixed_point.h"
#include "worker/nn/layer.h"

namespace muppet {

class BatchNorm2d : public Layer {
 public:
  // Parameters "<name>.weight" (gamma, ones) and "<name>.bias" (beta, zeros); buffers
  // "<name>.running_mean" (zeros) and "<name>.running_var" (ones).
  BatchNorm2d(const std::string& name, int64_t channels, bool relu = false, double momentum = 0.1,
              double epsilon = 1e-5);

  const Tensor& Forward(const Tensor& input, Mode mode) override;
  const Tensor& Backward(const Tensor& grad_output) override;
  Shape OutputShape(const Shape& input) const override { return input; }
  void CollectParameters(std::vector<Parameter*>& out) override;
  void CollectBuffers(std::vector<std::pair<std::string, Tensor*>>& out) override;
  bool ReadInputCodesFrom(Layer& producer) override;
  // Leaves the output described (x * scale + shift, then the ReLU) for the consumer to compute
  // as it reads it; the backward passes never read the output.
  bool DeferOutput() override;
  const kernels::ChannelAffineRows* deferred_output() const override;
  void WriteDeferredOutput() override;

  Parameter& gamma() { return gamma_; }
  Parameter& beta() { return beta_; }
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }
  Tensor& mutable_running_mean() { return running_mean_; }
  Tensor& mutable_running_var() { return running_var_; }
  int64_t channels() const { return channels_; }
  bool relu() const { return relu_; }
  double momentum() const { return momentum_; }
  double epsilon() const { return epsilon_; }

 private:
  // The last Forward's input as the kernels read it: the FP32 tensor, or the producer's codes.
  kernels::ChannelRows InputRows() const;
  // The per-channel sums of x and x^2 over the batch (2 * channels), in a fixed order; on codes
  // also the extremes of each channel's codes, into code_min_ and code_max_.
  std::vector<double> BatchSums(const kernels::ChannelRows& x);
  // The last Forward's output, described.
  kernels::ChannelAffineRows Output() const;
  // Writes Output() into output_.
  void WriteOutput();

  int64_t channels_;
  bool relu_;
  double momentum_;
  double epsilon_;
  std::string name_;
  Parameter gamma_;
  Parameter beta_;
  Tensor running_mean_;
  Tensor running_var_;
  // Per-channel statistics of the last training batch.
  std::vector<float> mean_;
  std::vector<float> inv_std_;
  // The forward's y = x * scale + shift (before the ReLU), per channel; the backward passes
  // recompute the ReLU's mask from them instead of reading the output.
  std::vector<float> scale_;
  std::vector<float> shift_;
  // Each channel's extreme input codes in the last training Forward on codes (code_extremes_),
  // which spare the deferred output's quantiser a pass for its range.
  std::vector<int32_t> code_min_;
  std::vector<int32_t> code_max_;
  bool code_extremes_ = false;
  Layer* producer_ = nullptr;  // Whose codes Forward reads when it leaves them.
  const Tensor* input_ = nullptr;
  const kernels::Quantized* input_codes_ = nullptr;  // Of the last Forward, when it read codes.
  bool defer_output_ = false;
  bool output_deferred_ = false;         // The last Forward left output_ unwritten.
  kernels::ChannelAffineRows deferred_;  // Output() while output_deferred_.
  Tensor output_;
  Tensor grad_input_;
};

// Writes y, a BatchNorm's described output (layer.h), into `out` (y's rows x channels), with
// `addend` added as ChannelAffine does, its rows spread over the threads.
void WriteChannelAffine(const kernels::ChannelAffineRows& y, float* out,
                        const kernels::ChannelAddend& addend = {});

}  // namespace muppet

#endif  // MUPPET_WORKER_NN_BATCH_NORM_H_
