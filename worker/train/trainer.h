// The training loop of one rank: epochs of minibatch SGD over a dataset, with evaluation.
#ifndef MUPPET_WORKER_TRAIN_TRAINER_H_
#define MUPPET_WORKER_TRAIN_TRAINER_H_

#include <cstdint>

#include "worker/data/loader.h"
#include "worker/models/model.h"
#include "worker/nn/loss.h"
#include "worker/optim/lr_schedule.h"
#include "worker/optim/sgd.h"

namespace muppet {

struct EpochResult {
  int epoch = 0;
  int precision_bits = 32;
  double learning_rate = 0;
  double train_loss = 0;      // Mean over the epoch's examples.
  double train_accuracy = 0;  // Ratio in [0, 1].
  double test_accuracy = 0;   // Ratio in [0, 1].
  double seconds = 0;         // Training time of the epoch, without evaluation.
  double images_per_second = 0;
  int64_t samples = 0;
};

// Receives progress while an epoch trains.
class TrainingObserver {
 public:
  virtual ~TrainingObserver() = default;
  // After each minibatch: `done` of `total` minibatches, the running mean loss, throughput, and
  // the seconds since the epoch began.
  virtual void OnIteration(int epoch, int64_t done, int64_t total, double mean_loss,
                           double images_per_second, double elapsed_seconds) {}
};

struct TrainerOptions {
  int epochs = 1;
  int64_t batch_size = 128;
  bool augment = false;
  uint64_t seed = 0;
  SgdOptions sgd;
};

class Trainer {
 public:
  // `model` and `data` must outlive the trainer.
  Trainer(Model& model, const TrainTest& data, const TrainerOptions& options);

  // Trains one epoch at learning rate `lr`, then evaluates on the test set.
  EpochResult TrainEpoch(int epoch, double lr, TrainingObserver* observer = nullptr);

  // Test-set accuracy, ratio in [0, 1].
  double Evaluate();

 private:
  // The test set is normalised with the training set's statistics, as at deployment; they are
  // computed once, in the public constructor, for both loaders.
  Trainer(Model& model, const TrainTest& data, const TrainerOptions& options,
          const Normalization& normalization);

  Model& model_;
  const TrainTest& data_;
  TrainerOptions options_;
  BatchLoader train_loader_;
  BatchLoader test_loader_;
  Sgd sgd_;
  SoftmaxCrossEntropy loss_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_TRAINER_H_
