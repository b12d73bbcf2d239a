// Data for the trainer's unit tests.
#ifndef MUPPET_WORKER_TRAIN_TEST_DATA_H_
#define MUPPET_WORKER_TRAIN_TEST_DATA_H_

#include "worker/data/dataset.h"

namespace muppet {

// 512 training and 128 test images, 1 x 12 x 12, of four well-separated classes.
inline TrainTest SmallSynthetic() {
  v1::SyntheticDataset s;
  s.set_channels(1);
  s.set_height(12);
  s.set_width(12);
  s.set_classes(4);
  s.set_train_size(512);
  s.set_test_size(128);
  return MakeSynthetic(s, 17);
}

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_TEST_DATA_H_
