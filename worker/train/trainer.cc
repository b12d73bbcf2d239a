#include "worker/train/trainer.h"

#include "worker/base/clock.h"

namespace muppet {

Trainer::Trainer(Model& model, const TrainTest& data, const TrainerOptions& options)
    : Trainer(model, data, options, Normalization::Of(data.train)) {}

Trainer::Trainer(Model& model, const TrainTest& data, const TrainerOptions& options,
                 const Normalization& normalization)
    : model_(model),
      data_(data),
      options_(options),
      train_loader_(data.train, normalization,
                    {.batch_size = options.batch_size,
                     .shuffle = true,
                     .augment = options.augment,
                     .seed = options.seed}),
      test_loader_(data.test, normalization,
                   {.batch_size = options.batch_size, .shuffle = false}),
      sgd_(model.parameters(), options.sgd) {}

EpochResult Trainer::TrainEpoch(int epoch, double lr, TrainingObserver* observer) {
  EpochResult result{.epoch = epoch, .learning_rate = lr};
  const double start = SteadySeconds();
  double loss_sum = 0;
  int64_t correct = 0, done = 0;
  const int64_t total = train_loader_.batches_per_epoch();
  train_loader_.StartEpoch(epoch);
  while (const Batch* batch = train_loader_.Next()) {
    const Tensor& logits = model_.Forward(batch->images, Mode::kTrain);
    const SoftmaxCrossEntropy::Result r = loss_.Forward(logits, batch->labels);
    model_.Backward(loss_.Backward());
    sgd_.Step(lr);
    const int64_t n = batch->images.n();
    loss_sum += r.loss * n;
    correct += r.correct;
    result.samples += n;
    ++done;
    if (observer != nullptr) {
      const double elapsed = SteadySeconds() - start;
      observer->OnIteration(epoch, done, total, loss_sum / result.samples,
                            result.samples / elapsed, elapsed);
    }
  }
  result.seconds = SteadySeconds() - start;
  result.train_loss = loss_sum / result.samples;
  result.train_accuracy = static_cast<double>(correct) / result.samples;
  result.images_per_second = result.samples / result.seconds;
  result.test_accuracy = Evaluate();
  return result;
}

double Trainer::Evaluate() {
  int64_t correct = 0, seen = 0;
  test_loader_.StartEpoch(0);
  while (const Batch* batch = test_loader_.Next()) {
    correct += loss_.Forward(model_.Forward(batch->images, Mode::kEval), batch->labels).correct;
    seen += batch->images.n();
  }
  return seen == 0 ? 0.0 : static_cast<double>(correct) / seen;
}

}  // namespace muppet
