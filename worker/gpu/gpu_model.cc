#include "worker/gpu/gpu_model.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/elementwise.h"
#include "worker/gpu/plan.h"

namespace muppet::gpu {
namespace {

template <typename T>
absl::Status AllocatePinned(int64_t count, T*& out) {
  MUPPET_CUDA_RETURN_IF_ERROR(cudaMallocHost(&out, std::max<int64_t>(count, 1) * sizeof(T)));
  return absl::OkStatus();
}

template <typename T>
absl::Status AllocateDevice(int64_t count, std::optional<cuda::DeviceBuffer<T>>& out) {
  absl::StatusOr<cuda::DeviceBuffer<T>> b = cuda::DeviceBuffer<T>::Allocate(count);
  if (!b.ok()) return b.status();
  out.emplace(*std::move(b));
  return absl::OkStatus();
}

// The GPU layers' parameters must be the CPU model's, in its order: the optimiser state and the
// checkpoints index them so.
absl::Status CheckParameterOrder(const std::vector<DeviceParameter*>& device,
                                 const std::vector<Parameter*>& host) {
  if (device.size() != host.size()) {
    return absl::InternalError(absl::StrCat("the GPU network has ", device.size(),
                                            " parameters, the model ", host.size()));
  }
  for (size_t i = 0; i < host.size(); ++i) {
    if (device[i]->host != host[i]) {
      return absl::InternalError(absl::StrCat("GPU parameter ", i, " is ", device[i]->host->name,
                                              ", the model's ", host[i]->name));
    }
  }
  return absl::OkStatus();
}

// The optimiser a GPU model's state goes to or comes from must be of its parameters.
absl::Status CheckMomentumBuffers(size_t buffers, size_t parameters) {
  if (buffers == parameters) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("the optimiser has ", buffers,
                                                 " momentum buffers, the GPU model ", parameters,
                                                 " parameters"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<GpuModel>> GpuModel::Create(Model& model, int64_t max_batch,
                                                           cuda::FloatMath math,
                                                           const SgdOptions& sgd) {
  if (max_batch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch: must be at least 1, got ", max_batch));
  }
  Shape input = model.input_shape();
  input.insert(input.begin(), max_batch);
  absl::StatusOr<GpuOp> plan = PlanGpu(model.network(), input);
  if (!plan.ok()) return plan.status();
  if (plan->output.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat("model ", model.name(), ": gives logits of ",
                                                   ShapeString(plan->output), ", not (N, K)"));
  }

  cudaStream_t stream = nullptr;
  MUPPET_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  absl::StatusOr<cuda::Cudnn> cudnn = cuda::Cudnn::Create(stream);
  absl::StatusOr<cuda::LinearF32> linear =
      cudnn.ok() ? cuda::LinearF32::Create(math) : absl::StatusOr<cuda::LinearF32>(cudnn.status());
  absl::StatusOr<cuda::QuantizeWorkspace> quantize =
      linear.ok() ? cuda::QuantizeWorkspace::Create()
                  : absl::StatusOr<cuda::QuantizeWorkspace>(linear.status());
  if (!quantize.ok()) {
    cudaStreamDestroy(stream);
    return quantize.status();
  }
  auto context = std::unique_ptr<GpuContext>(
      new GpuContext{stream, *std::move(cudnn), *std::move(linear), math, *std::move(quantize)});
  std::unique_ptr<GpuModel> gpu(new GpuModel(model, std::move(context), max_batch, sgd));
  gpu->classes_ = plan->output[1];

  absl::StatusOr<std::unique_ptr<GpuLayer>> network = BuildGpuLayer(*plan, *gpu->context_);
  if (!network.ok()) return network.status();
  gpu->network_ = *std::move(network);
  gpu->network_->SetInputGradRequired(false);
  gpu->network_->CollectParameters(gpu->parameters_);
  MUPPET_RETURN_IF_ERROR(CheckParameterOrder(gpu->parameters_, model.parameters()));
  for (DeviceParameter* p : gpu->parameters_) {
    MUPPET_RETURN_IF_ERROR(p->velocity.Resize(p->value.shape()));
  }

  const int64_t image = NumElements(model.input_shape());
  MUPPET_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&gpu->copy_stream_, cudaStreamNonBlocking));
  MUPPET_CUDA_RETURN_IF_ERROR(
      cudaEventCreateWithFlags(&gpu->results_ready_, cudaEventDisableTiming));
  for (Staging& s : gpu->staging_) {
    MUPPET_RETURN_IF_ERROR(AllocatePinned(max_batch * image, s.pinned_images));
    MUPPET_RETURN_IF_ERROR(AllocatePinned(max_batch, s.pinned_labels));
    MUPPET_RETURN_IF_ERROR(AllocateDevice(max_batch, s.labels));
    MUPPET_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming));
  }
  MUPPET_RETURN_IF_ERROR(AllocatePinned(max_batch, gpu->pinned_row_loss_));
  MUPPET_RETURN_IF_ERROR(AllocatePinned(max_batch, gpu->pinned_row_correct_));
  MUPPET_RETURN_IF_ERROR(AllocateDevice(max_batch, gpu->row_loss_));
  MUPPET_RETURN_IF_ERROR(AllocateDevice(max_batch, gpu->row_correct_));
  return gpu;
}

GpuModel::~GpuModel() {
  if (context_ == nullptr) return;
  // Errors here are earlier asynchronous ones, already reported.
  const cudaStream_t stream = context_->stream;
  cudaStreamSynchronize(stream);
  if (copy_stream_ != nullptr) cudaStreamSynchronize(copy_stream_);
  for (Staging& s : staging_) {
    if (s.pinned_images != nullptr) cudaFreeHost(s.pinned_images);
    if (s.pinned_labels != nullptr) cudaFreeHost(s.pinned_labels);
    if (s.copied != nullptr) cudaEventDestroy(s.copied);
  }
  for (void* p : {static_cast<void*>(pinned_row_loss_), static_cast<void*>(pinned_row_correct_)}) {
    if (p != nullptr) cudaFreeHost(p);
  }
  if (results_ready_ != nullptr) cudaEventDestroy(results_ready_);
  if (copy_stream_ != nullptr) cudaStreamDestroy(copy_stream_);
  network_.reset();  // Its layers hold the context's handles.
  context_.reset();
  cudaStreamDestroy(stream);
}

absl::StatusOr<int> GpuModel::Stage(const Batch& batch) {
  const Tensor& images = batch.images;
  const Shape& image = model_.input_shape();
  const bool shaped =
      images.rank() == 4 && std::equal(image.begin(), image.end(), images.shape().begin() + 1);
  if (!shaped || images.dim(0) < 1 || images.dim(0) > max_batch_) {
    return absl::InvalidArgumentError(
        absl::StrCat("images: expected (N, ", image[0], ", ", image[1], ", ", image[2],
                     ") with N in [1, ", max_batch_, "], got ", ShapeString(images.shape())));
  }
  const int64_t n = images.dim(0);
  if (static_cast<int64_t>(batch.labels.size()) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels: ", batch.labels.size(), " for a batch of ", n, " images"));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (batch.labels[i] < 0 || batch.labels[i] >= classes_) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels[", i, "]: ", batch.labels[i], " is outside [0, ", classes_, ")"));
    }
  }
  const int which = next_staging_;
  next_staging_ ^= 1;
  Staging& s = staging_[which];
  // This buffer's last copy must be done before its pinned memory is written again. Its device
  // buffers were last read two passes ago, before the last pass's results, which were waited for.
  MUPPET_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(s.copied));
  std::copy(images.span().begin(), images.span().end(), s.pinned_images);
  std::copy(batch.labels.begin(), batch.labels.end(), s.pinned_labels);
  MUPPET_RETURN_IF_ERROR(s.images.Resize(images.shape()));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(s.images.data(), s.pinned_images,
                                              images.size() * sizeof(float), cudaMemcpyHostToDevice,
                                              copy_stream_));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(s.labels->data(), s.pinned_labels,
                                              n * sizeof(int32_t), cudaMemcpyHostToDevice,
                                              copy_stream_));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaEventRecord(s.copied, copy_stream_));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(context_->stream, s.copied));
  return which;
}

absl::StatusOr<SoftmaxCrossEntropy::Result> GpuModel::Pass(const Batch& batch, Mode mode) {
  absl::StatusOr<int> which = Stage(batch);
  if (!which.ok()) return which.status();
  const Staging& in = staging_[*which];
  const int64_t n = batch.images.dim(0);
  const cudaStream_t stream = context_->stream;
  absl::StatusOr<const DeviceTensor*> logits = network_->Forward(in.images, mode);
  if (!logits.ok()) return logits.status();
  MUPPET_RETURN_IF_ERROR(probabilities_.Resize((*logits)->shape()));
  MUPPET_RETURN_IF_ERROR(cuda::SoftmaxCrossEntropy(
      (*logits)->data(), in.labels->data(), n, classes_, probabilities_.data(), row_loss_->data(),
      row_correct_->data(), stream));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(pinned_row_loss_, row_loss_->data(),
                                              n * sizeof(double), cudaMemcpyDeviceToHost, stream));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(pinned_row_correct_, row_correct_->data(),
                                              n * sizeof(int32_t), cudaMemcpyDeviceToHost, stream));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaEventRecord(results_ready_, stream));
  if (mode == Mode::kTrain) {
    // Enqueued before waiting for the loss, so that the device never idles on the host.
    MUPPET_RETURN_IF_ERROR(grad_logits_.Resize(probabilities_.shape()));
    MUPPET_RETURN_IF_ERROR(cuda::SoftmaxCrossEntropyBackward(
        probabilities_.data(), in.labels->data(), n, classes_, n, grad_logits_.data(), stream));
    absl::StatusOr<const DeviceTensor*> grad_input = network_->Backward(grad_logits_);
    if (!grad_input.ok()) return grad_input.status();
  }
  MUPPET_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(results_ready_));
  SoftmaxCrossEntropy::Result result;
  for (int64_t i = 0; i < n; ++i) {
    result.loss += pinned_row_loss_[i];
    result.correct += pinned_row_correct_[i];
  }
  result.loss /= static_cast<double>(n);
  return result;
}

absl::StatusOr<SoftmaxCrossEntropy::Result> GpuModel::Step(const Batch& batch) {
  return Pass(batch, Mode::kTrain);
}

absl::Status GpuModel::Update(double lr) {
  const cuda::SgdStep step{.lr = static_cast<float>(lr),
                           .momentum = static_cast<float>(sgd_.momentum),
                           .weight_decay = static_cast<float>(sgd_.weight_decay),
                           .nesterov = sgd_.nesterov,
                           .first = !sgd_started_};
  for (DeviceParameter* p : parameters_) {
    MUPPET_RETURN_IF_ERROR(cuda::Sgd(step, p->grad.data(), p->value.size(), p->value.data(),
                                     p->velocity.data(), context_->stream));
  }
  sgd_started_ = true;
  return absl::OkStatus();
}

absl::StatusOr<SoftmaxCrossEntropy::Result> GpuModel::Evaluate(const Batch& batch) {
  return Pass(batch, Mode::kEval);
}

absl::Status GpuModel::DownloadParameters() {
  for (DeviceParameter* p : parameters_) {
    MUPPET_RETURN_IF_ERROR(p->value.CopyTo(p->host->value, context_->stream));
    MUPPET_RETURN_IF_ERROR(p->grad.CopyTo(p->host->grad, context_->stream));
  }
  return absl::OkStatus();
}

absl::Status GpuModel::Download(Sgd& sgd) {
  std::vector<Tensor>& velocity = sgd.momentum_buffers();
  MUPPET_RETURN_IF_ERROR(CheckMomentumBuffers(velocity.size(), parameters_.size()));
  for (size_t k = 0; k < parameters_.size(); ++k) {
    DeviceParameter& p = *parameters_[k];
    MUPPET_RETURN_IF_ERROR(p.value.CopyTo(p.host->value, context_->stream));
    MUPPET_RETURN_IF_ERROR(p.grad.CopyTo(p.host->grad, context_->stream));
    MUPPET_RETURN_IF_ERROR(p.velocity.CopyTo(velocity[k], context_->stream));
  }
  sgd.set_started(sgd_started_);
  return network_->DownloadBuffers();
}

absl::Status GpuModel::Upload(const Sgd& sgd) {
  const std::vector<Tensor>& velocity = sgd.momentum_buffers();
  MUPPET_RETURN_IF_ERROR(CheckMomentumBuffers(velocity.size(), parameters_.size()));
  for (size_t k = 0; k < parameters_.size(); ++k) {
    DeviceParameter& p = *parameters_[k];
    MUPPET_RETURN_IF_ERROR(p.value.CopyFrom(p.host->value, context_->stream));
    MUPPET_RETURN_IF_ERROR(p.velocity.CopyFrom(velocity[k], context_->stream));
  }
  MUPPET_RETURN_IF_ERROR(network_->UploadBuffers());
  MUPPET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(context_->stream));
  sgd_started_ = sgd.started();
  return absl::OkStatus();
}

}  // namespace muppet::gpu
