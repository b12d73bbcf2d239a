#include "worker/gpu/gpu_layers.h"

#include <cmath>
#include <map>
#include <optional>

#include "base/status_macros.h"
#include "kernels/cuda/batch_norm.h"
#include "kernels/cuda/cudnn_conv.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/pooling.h"
#include "worker/gpu/fixed_conv.h"
#include "worker/gpu/fixed_point.h"
#include "worker/nn/batch_norm.h"
#include "worker/nn/containers.h"
#include "worker/nn/conv2d.h"
#include "worker/nn/linear.h"
#include "worker/nn/pooling.h"

namespace muppet::gpu {
namespace {

// A device copy of a CPU parameter, its gradient sized alike (waits for the copy).
absl::StatusOr<std::unique_ptr<DeviceParameter>> Upload(Parameter& host, cudaStream_t stream) {
  auto p = std::make_unique<DeviceParameter>();
  p->host = &host;
  MUPPET_RETURN_IF_ERROR(p->value.CopyFrom(host.value, stream));
  MUPPET_RETURN_IF_ERROR(p->grad.Resize(host.value.shape()));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  return p;
}

// A per-batch cache of one layer's cuDNN plans (descriptors are fixed to a batch size).
template <typename Plan, typename Make>
absl::StatusOr<Plan*> PlanFor(std::map<int64_t, Plan>& plans, int64_t batch, Make&& make) {
  if (auto it = plans.find(batch); it != plans.end()) return &it->second;
  absl::StatusOr<Plan> plan = make();
  if (!plan.ok()) return plan.status();
  return &plans.emplace(batch, *std::move(plan)).first->second;
}

class GpuConv : public GpuLayer {
 public:
  GpuConv(Conv2d& cpu, GpuContext& context)
      : cpu_(cpu), context_(context), fixed_(cpu.precision(), context) {}

  absl::Status Init() {
    absl::StatusOr<std::unique_ptr<DeviceParameter>> w = Upload(cpu_.weight(), context_.stream);
    if (!w.ok()) return w.status();
    weight_ = *std::move(w);
    if (cpu_.bias() != nullptr) {
      absl::StatusOr<std::unique_ptr<DeviceParameter>> b = Upload(*cpu_.bias(), context_.stream);
      if (!b.ok()) return b.status();
      bias_ = *std::move(b);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<const DeviceTensor*> Forward(const DeviceTensor& x, Mode) override {
    const Conv2dOptions& o = cpu_.options();
    const kernels::ConvGeometry g{.n = x.dim(0),
                                  .h = x.dim(2),
                                  .w = x.dim(3),
                                  .c = x.dim(1),
                                  .o = o.out_channels,
                                  .kernel = o.kernel,
                                  .stride = o.stride,
                                  .padding = o.padding};
    input_ = &x;
    geometry_ = g;
    fixed_pass_ = fixed_.active();
    MUPPET_RETURN_IF_ERROR(output_.Resize({g.n, g.o, g.out_h(), g.out_w()}));
    if (fixed_pass_) {
      MUPPET_RETURN_IF_ERROR(fixed_.Forward(g, x.data(), weight_->value.data(),
                                            bias_ ? bias_->value.data() : nullptr, output_.data()));
      return &output_;
    }
    absl::StatusOr<cuda::CudnnConv*> conv = PlanFor(
        plans_, g.n, [&] { return cuda::CudnnConv::Create(context_.cudnn, g, context_.math); });
    if (!conv.ok()) return conv.status();
    conv_ = *conv;
    MUPPET_RETURN_IF_ERROR(conv_->Forward(x.data(), weight_->value.data(),
                                          bias_ ? bias_->value.data() : nullptr, output_.data()));
    return &output_;
  }

  absl::StatusOr<const DeviceTensor*> Backward(const DeviceTensor& dy) override {
    if (input_grad_required_) MUPPET_RETURN_IF_ERROR(grad_input_.Resize(input_->shape()));
    if (fixed_pass_) {
      MUPPET_RETURN_IF_ERROR(fixed_.Backward(geometry_, dy.data(), weight_->grad.data(),
                                             bias_ ? bias_->grad.data() : nullptr,
                                             input_grad_required_ ? grad_input_.data() : nullptr));
      return input_grad_required_ ? &grad_input_ : nullptr;
    }
    MUPPET_RETURN_IF_ERROR(conv_->BackwardWeights(input_->data(), dy.data(), weight_->grad.data()));
    if (bias_) MUPPET_RETURN_IF_ERROR(conv_->BackwardBias(dy.data(), bias_->grad.data()));
    if (!input_grad_required_) return nullptr;
    MUPPET_RETURN_IF_ERROR(conv_->BackwardData(weight_->value.data(), dy.data(),
                                               /*accumulate=*/false, grad_input_.data()));
    return &grad_input_;
  }

  void CollectParameters(std::vector<DeviceParameter*>& out) override {
    out.push_back(weight_.get());
    if (bias_) out.push_back(bias_.get());
  }

 private:
  Conv2d& cpu_;
  GpuContext& context_;
  FixedConvPasses fixed_;
  std::unique_ptr<DeviceParameter> weight_, bias_;
  std::map<int64_t, cuda::CudnnConv> plans_;
  cuda::CudnnConv* conv_ = nullptr;
  kernels::ConvGeometry geometry_;
  bool fixed_pass_ = false;  // Whether the last Forward ran at a fixed-point level.
  const DeviceTensor* input_ = nullptr;
  DeviceTensor output_, grad_input_;
};

class GpuBatchNorm : public GpuLayer {
 public:
  GpuBatchNorm(BatchNorm2d& cpu, GpuContext& context) : cpu_(cpu), context_(context) {}

  absl::Status Init() {
    for (auto [host, device] : {std::pair{&cpu_.gamma(), &gamma_}, {&cpu_.beta(), &beta_}}) {
      absl::StatusOr<std::unique_ptr<DeviceParameter>> p = Upload(*host, context_.stream);
      if (!p.ok()) return p.status();
      *device = *std::move(p);
    }
    MUPPET_RETURN_IF_ERROR(running_mean_.CopyFrom(cpu_.running_mean(), context_.stream));
    MUPPET_RETURN_IF_ERROR(running_var_.CopyFrom(cpu_.running_var(), context_.stream));
    MUPPET_RETURN_IF_ERROR(saved_mean_.Resize({cpu_.channels()}));
    MUPPET_RETURN_IF_ERROR(saved_inv_std_.Resize({cpu_.channels()}));
    MUPPET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(context_.stream));
    return absl::OkStatus();
  }

  absl::StatusOr<const DeviceTensor*> Forward(const DeviceTensor& x, Mode mode) override {
    absl::StatusOr<cuda::CudnnBatchNorm*> bn = PlanFor(plans_, x.dim(0), [&] {
      return cuda::CudnnBatchNorm::Create(context_.cudnn, x.dim(0), x.dim(1), x.dim(2), x.dim(3),
                                          cpu_.momentum(), cpu_.epsilon());
    });
    if (!bn.ok()) return bn.status();
    bn_ = *bn;
    input_ = &x;
    MUPPET_RETURN_IF_ERROR(output_.Resize(x.shape()));
    if (mode == Mode::kTrain) {
      MUPPET_RETURN_IF_ERROR(bn_->ForwardTraining(
          x.data(), gamma_->value.data(), beta_->value.data(), output_.data(), running_mean_.data(),
          running_var_.data(), saved_mean_.data(), saved_inv_std_.data()));
    } else {
      MUPPET_RETURN_IF_ERROR(bn_->ForwardInference(x.data(), gamma_->value.data(),
                                                   beta_->value.data(), running_mean_.data(),
                                                   running_var_.data(), output_.data()));
    }
    if (cpu_.relu()) {
      MUPPET_RETURN_IF_ERROR(
          cuda::Relu(output_.data(), output_.size(), output_.data(), context_.stream));
    }
    return &output_;
  }

  absl::StatusOr<const DeviceTensor*> Backward(const DeviceTensor& dy) override {
    const float* grad = dy.data();
    if (cpu_.relu()) {
      MUPPET_RETURN_IF_ERROR(masked_.Resize(dy.shape()));
      MUPPET_RETURN_IF_ERROR(cuda::ReluBackward(dy.data(), output_.data(), dy.size(),
                                                masked_.data(), context_.stream));
      grad = masked_.data();
    }
    // cuDNN computes dx with the parameters' gradients; a first layer's is written and unused.
    MUPPET_RETURN_IF_ERROR(grad_input_.Resize(input_->shape()));
    MUPPET_RETURN_IF_ERROR(bn_->Backward(
        input_->data(), grad, gamma_->value.data(), saved_mean_.data(), saved_inv_std_.data(),
        grad_input_.data(), gamma_->grad.data(), beta_->grad.data()));
    return input_grad_required_ ? &grad_input_ : nullptr;
  }

  void CollectParameters(std::vector<DeviceParameter*>& out) override {
    out.push_back(gamma_.get());
    out.push_back(beta_.get());
  }

  absl::Status DownloadBuffers() override {
    MUPPET_RETURN_IF_ERROR(running_mean_.CopyTo(cpu_.mutable_running_mean(), context_.stream));
    return running_var_.CopyTo(cpu_.mutable_running_var(), context_.stream);
  }

  absl::Status UploadBuffers() override {
    MUPPET_RETURN_IF_ERROR(running_mean_.CopyFrom(cpu_.running_mean(), context_.stream));
    return running_var_.CopyFrom(cpu_.running_var(), context_.stream);
  }

 private:
  BatchNorm2d& cpu_;
  GpuContext& context_;
  std::unique_ptr<DeviceParameter> gamma_, beta_;
  DeviceTensor running_mean_, running_var_, saved_mean_, saved_inv_std_;
  std::map<int64_t, cuda::CudnnBatchNorm> plans_;
  cuda::CudnnBatchNorm* bn_ = nullptr;
  const DeviceTensor* input_ = nullptr;
  DeviceTensor output_, masked_, grad_input_;
};

class GpuRelu : public GpuLayer {
 public:
  explicit GpuRelu(GpuContext& context) : context_(context) {}

  absl::StatusOr<const DeviceTensor*> Forward(const DeviceTensor& x, Mode) override {
    MUPPET_RETURN_IF_ERROR(output_.Resize(x.shape()));
    MUPPET_RETURN_IF_ERROR(cuda::Relu(x.data(), x.size(), output_.data(), context_.stream));
    return &output_;
  }

  absl::StatusOr<const DeviceTensor*> Backward(const DeviceTensor& dy) override {
    if (!input_grad_required_) return nullptr;
    MUPPET_RETURN_IF_ERROR(grad_input_.Resize(dy.shape()));
    MUPPET_RETURN_IF_ERROR(cuda::ReluBackward(dy.data(), output_.data(), dy.size(),
                                              grad_input_.data(), context_.stream));
    return &grad_input_;
  }

 private:
  GpuContext& context_;
  DeviceTensor output_, grad_input_;
};

// Max, average and global average pooling: one window per output pixel, or one over the image.
// At fixed-point levels average pooling rounds its output and incoming gradient.
class GpuPool : public GpuLayer {
 public:
  // `options` null for global average pooling; `rounding` null for max pooling.
  GpuPool(cuda::PoolKind kind, const PoolOptions* options, const AveragePrecision* rounding,
          GpuContext& context)
      : kind_(kind), options_(options), context_(context) {
    if (rounding != nullptr) rounding_.emplace(rounding->layer(), context.quantize);
  }

  absl::StatusOr<const DeviceTensor*> Forward(const DeviceTensor& x, Mode) override {
    cuda::PoolGeometry g{.n = x.dim(0), .h = x.dim(2), .w = x.dim(3), .c = x.dim(1)};
    if (options_ != nullptr) {
      g.window_h = g.window_w = options_->kernel;
      g.stride = options_->stride;
      g.padding = options_->padding;
    } else {
      g.window_h = g.h;
      g.window_w = g.w;
      g.stride = 1;
    }
    absl::StatusOr<cuda::CudnnPool*> pool =
        PlanFor(plans_, g.n, [&] { return cuda::CudnnPool::Create(context_.cudnn, kind_, g); });
    if (!pool.ok()) return pool.status();
    pool_ = *pool;
    input_ = &x;
    MUPPET_RETURN_IF_ERROR(output_.Resize({g.n, g.c, g.out_h(), g.out_w()}));
    MUPPET_RETURN_IF_ERROR(pool_->Forward(x.data(), output_.data()));
    rounded_pass_ = rounding_.has_value() && rounding_->active();
    if (rounded_pass_) {
      MUPPET_RETURN_IF_ERROR(
          rounding_->Round(output_.data(), output_.size(), Rounded::kOutput, context_.stream));
    }
    return &output_;
  }

  absl::StatusOr<const DeviceTensor*> Backward(const DeviceTensor& dy) override {
    if (!input_grad_required_) return nullptr;
    const float* grad = dy.data();
    if (rounded_pass_) {
      MUPPET_RETURN_IF_ERROR(rounded_grad_.Resize(dy.shape()));
      MUPPET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(rounded_grad_.data(), dy.data(),
                                                  dy.size() * sizeof(float),
                                                  cudaMemcpyDeviceToDevice, context_.stream));
      MUPPET_RETURN_IF_ERROR(rounding_->Round(rounded_grad_.data(), rounded_grad_.size(),
                                              Rounded::kOutputGradient, context_.stream));
      grad = rounded_grad_.data();
    }
    MUPPET_RETURN_IF_ERROR(grad_input_.Resize(input_->shape()));
    MUPPET_RETURN_IF_ERROR(
        pool_->Backward(input_->data(), output_.data(), grad, grad_input_.data()));
    return &grad_input_;
  }

 private:
  cuda::PoolKind kind_;
  const PoolOptions* options_;
  GpuContext& context_;
  std::optional<DeviceFixedPoint> rounding_;  // Average pooling's.
  bool rounded_pass_ = false;                 // Whether the last Forward rounded.
  std::map<int64_t, cuda::CudnnPool> plans_;
  cuda::CudnnPool* pool_ = nullptr;
  const DeviceTensor* input_ = nullptr;
  DeviceTensor output_, rounded_grad_, grad_input_;
};

class GpuLinear : public GpuLayer {
 public:
  GpuLinear(Linear& cpu, GpuContext& context)
      : cpu_(cpu), context_(context), fixed_(cpu.precision(), context) {}

  absl::Status Init() {
    for (auto [host, device] : {std::pair{&cpu_.weight(), &weight_}, {&cpu_.bias(), &bias_}}) {
      absl::StatusOr<std::unique_ptr<DeviceParameter>> p = Upload(*host, context_.stream);
      if (!p.ok()) return p.status();
      *device = *std::move(p);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<const DeviceTensor*> Forward(const DeviceTensor& x, Mode) override {
    shape_ = {.m = x.dim(0), .k = cpu_.in_features(), .n = cpu_.out_features()};
    if (x.size() != shape_.m * shape_.k) {
      return absl::InvalidArgumentError(absl::StrCat(
          "linear layer of ", shape_.k, " input features given ", ShapeString(x.shape())));
    }
    input_ = &x;
    fixed_pass_ = fixed_.active();
    MUPPET_RETURN_IF_ERROR(output_.Resize({shape_.m, shape_.n}));
    if (fixed_pass_) {
      MUPPET_RETURN_IF_ERROR(fixed_.Forward(AsConvolution(), x.data(), weight_->value.data(),
                                            bias_->value.data(), output_.data()));
      return &output_;
    }
    MUPPET_RETURN_IF_ERROR(context_.linear.Forward(shape_, x.data(), weight_->value.data(),
                                                   bias_->value.data(), output_.data(),
                                                   context_.stream));
    return &output_;
  }

  absl::StatusOr<const DeviceTensor*> Backward(const DeviceTensor& dy) override {
    if (fixed_pass_) {
      if (input_grad_required_) MUPPET_RETURN_IF_ERROR(grad_input_.Resize(input_->shape()));
      MUPPET_RETURN_IF_ERROR(fixed_.Backward(AsConvolution(), dy.data(), weight_->grad.data(),
                                             bias_->grad.data(),
                                             input_grad_required_ ? grad_input_.data() : nullptr));
      return input_grad_required_ ? &grad_input_ : nullptr;
    }
    MUPPET_RETURN_IF_ERROR(context_.linear.BackwardWeights(shape_, input_->data(), dy.data(),
                                                           weight_->grad.data(), bias_->grad.data(),
                                                           context_.stream));
    if (!input_grad_required_) return nullptr;
    MUPPET_RETURN_IF_ERROR(grad_input_.Resize(input_->shape()));
    MUPPET_RETURN_IF_ERROR(context_.linear.BackwardData(shape_, dy.data(), weight_->value.data(),
                                                        grad_input_.data(), context_.stream));
    return &grad_input_;
  }

  void CollectParameters(std::vector<DeviceParameter*>& out) override {
    out.push_back(weight_.get());
    out.push_back(bias_.get());
  }

 private:
  // The layer as a 1x1 convolution of 1x1 images: the same sums.
  kernels::ConvGeometry AsConvolution() const {
    return {.n = shape_.m, .c = shape_.k, .o = shape_.n, .kernel = 1};
  }

  Linear& cpu_;
  GpuContext& context_;
  FixedConvPasses fixed_;
  std::unique_ptr<DeviceParameter> weight_, bias_;
  cuda::LinearShape shape_;
  bool fixed_pass_ = false;  // Whether the last Forward ran at a fixed-point level.
  const DeviceTensor* input_ = nullptr;
  DeviceTensor output_, grad_input_;
};

class GpuSequential : public GpuLayer {
 public:
  explicit GpuSequential(std::vector<std::unique_ptr<GpuLayer>> layers)
      : layers_(std::move(layers)) {}

  absl::StatusOr<const DeviceTensor*> Forward(const DeviceTensor& x, Mode mode) override {
    const DeviceTensor* at = &x;
    for (auto& layer : layers_) {
      absl::StatusOr<const DeviceTensor*> next = layer->Forward(*at, mode);
      if (!next.ok()) return next.status();
      at = *next;
    }
    return at;
  }

  absl::StatusOr<const DeviceTensor*> Backward(const DeviceTensor& dy) override {
    const DeviceTensor* at = &dy;
    for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {
      absl::StatusOr<const DeviceTensor*> next = (*it)->Backward(*at);
      if (!next.ok()) return next.status();
      at = *next;
    }
    return layers_.empty() ? (input_grad_required_ ? &dy : nullptr) : at;
  }

  void CollectParameters(std::vector<DeviceParameter*>& out) override {
    for (auto& layer : layers_) layer->CollectParameters(out);
  }

  absl::Status DownloadBuffers() override {
    for (auto& layer : layers_) MUPPET_RETURN_IF_ERROR(layer->DownloadBuffers());
    return absl::OkStatus();
  }

  absl::Status UploadBuffers() override {
    for (auto& layer : layers_) MUPPET_RETURN_IF_ERROR(layer->UploadBuffers());
    return absl::OkStatus();
  }

  void SetInputGradRequired(bool required) override {
    input_grad_required_ = required;
    if (!layers_.empty()) layers_.front()->SetInputGradRequired(required);
  }

 private:
  std::vector<std::unique_ptr<GpuLayer>> layers_;
};

// main(x) + shortcut(x) (the identity without one), then the ReLU floor if the block has one.
class GpuResidual : public GpuLayer {
 public:
  GpuResidual(std::unique_ptr<GpuLayer> main, std::unique_ptr<GpuLayer> shortcut, bool relu,
              GpuContext& context)
      : main_(std::move(main)), shortcut_(std::move(shortcut)), relu_(relu), context_(context) {}

  absl::StatusOr<const DeviceTensor*> Forward(const DeviceTensor& x, Mode mode) override {
    absl::StatusOr<const DeviceTensor*> main = main_->Forward(x, mode);
    if (!main.ok()) return main.status();
    const DeviceTensor* shortcut = &x;
    if (shortcut_) {
      absl::StatusOr<const DeviceTensor*> s = shortcut_->Forward(x, mode);
      if (!s.ok()) return s.status();
      shortcut = *s;
    }
    MUPPET_RETURN_IF_ERROR(output_.Resize((*main)->shape()));
    MUPPET_RETURN_IF_ERROR(cuda::AddInto((*main)->data(), shortcut->data(), output_.size(),
                                         relu_ ? 0.0f : -INFINITY, output_.data(),
                                         context_.stream));
    return &output_;
  }

  absl::StatusOr<const DeviceTensor*> Backward(const DeviceTensor& dy) override {
    const DeviceTensor* grad = &dy;
    if (relu_) {
      MUPPET_RETURN_IF_ERROR(masked_.Resize(dy.shape()));
      MUPPET_RETURN_IF_ERROR(cuda::ReluBackward(dy.data(), output_.data(), dy.size(),
                                                masked_.data(), context_.stream));
      grad = &masked_;
    }
    absl::StatusOr<const DeviceTensor*> main = main_->Backward(*grad);
    if (!main.ok()) return main.status();
    const DeviceTensor* shortcut = grad;
    if (shortcut_) {
      absl::StatusOr<const DeviceTensor*> s = shortcut_->Backward(*grad);
      if (!s.ok()) return s.status();
      shortcut = *s;
    }
    if (!input_grad_required_) return nullptr;
    MUPPET_RETURN_IF_ERROR(grad_input_.Resize((*main)->shape()));
    MUPPET_RETURN_IF_ERROR(cuda::AddInto((*main)->data(), shortcut->data(), grad_input_.size(),
                                         -INFINITY, grad_input_.data(), context_.stream));
    return &grad_input_;
  }

  void CollectParameters(std::vector<DeviceParameter*>& out) override {
    main_->CollectParameters(out);
    if (shortcut_) shortcut_->CollectParameters(out);
  }

  absl::Status DownloadBuffers() override {
    MUPPET_RETURN_IF_ERROR(main_->DownloadBuffers());
    return shortcut_ ? shortcut_->DownloadBuffers() : absl::OkStatus();
  }

  absl::Status UploadBuffers() override {
    MUPPET_RETURN_IF_ERROR(main_->UploadBuffers());
    return shortcut_ ? shortcut_->UploadBuffers() : absl::OkStatus();
  }

  void SetInputGradRequired(bool required) override {
    // The paths' input gradients are summed into this one's, so they need them as it does.
    input_grad_required_ = required;
    main_->SetInputGradRequired(required);
    if (shortcut_) shortcut_->SetInputGradRequired(required);
  }

 private:
  std::unique_ptr<GpuLayer> main_, shortcut_;
  bool relu_;
  GpuContext& context_;
  DeviceTensor output_, masked_, grad_input_;
};

// Builds `layer`, then runs its Init (uploads) when it has one.
template <typename L, typename... Args>
absl::StatusOr<std::unique_ptr<GpuLayer>> Make(Args&&... args) {
  auto layer = std::make_unique<L>(std::forward<Args>(args)...);
  if constexpr (requires { layer->Init(); }) MUPPET_RETURN_IF_ERROR(layer->Init());
  return layer;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GpuLayer>> BuildGpuLayer(const GpuOp& op, GpuContext& context) {
  using Kind = GpuOp::Kind;
  std::vector<std::unique_ptr<GpuLayer>> children;
  for (const GpuOp& c : op.children) {
    absl::StatusOr<std::unique_ptr<GpuLayer>> child = BuildGpuLayer(c, context);
    if (!child.ok()) return child.status();
    children.push_back(*std::move(child));
  }
  switch (op.kind) {
    case Kind::kSequential:
      return Make<GpuSequential>(std::move(children));
    case Kind::kResidual: {
      auto& cpu = static_cast<Residual&>(*op.layer);
      std::unique_ptr<GpuLayer> shortcut = children.size() > 1 ? std::move(children[1]) : nullptr;
      return Make<GpuResidual>(std::move(children[0]), std::move(shortcut), cpu.relu(), context);
    }
    case Kind::kConv:
      return Make<GpuConv>(static_cast<Conv2d&>(*op.layer), context);
    case Kind::kBatchNorm:
      return Make<GpuBatchNorm>(static_cast<BatchNorm2d&>(*op.layer), context);
    case Kind::kRelu:
      return Make<GpuRelu>(context);
    case Kind::kMaxPool:
      return Make<GpuPool>(cuda::PoolKind::kMax, &static_cast<Pool2d&>(*op.layer).options(),
                           nullptr, context);
    case Kind::kAveragePool: {
      auto& cpu = static_cast<Pool2d&>(*op.layer);
      return Make<GpuPool>(cuda::PoolKind::kAverage, &cpu.options(), &cpu.precision(), context);
    }
    case Kind::kGlobalAvgPool:
      return Make<GpuPool>(cuda::PoolKind::kAverage, nullptr,
                           &static_cast<GlobalAvgPool&>(*op.layer).precision(), context);
    case Kind::kLinear:
      return Make<GpuLinear>(static_cast<Linear&>(*op.layer), context);
  }
  return absl::UnimplementedError(absl::StrCat("no GPU layer for ", GpuOpName(op.kind)));
}

}  // namespace muppet::gpu
