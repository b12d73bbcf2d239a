// Test helpers: random tensors, and a finite-difference check of a layer's backward pass.
#ifndef MUPPET_WORKER_NN_GRADIENT_CHECK_H_
#define MUPPET_WORKER_NN_GRADIENT_CHECK_H_

#include <cstdint>

#include "worker/nn/layer.h"

namespace muppet::testing {

// A tensor of `shape` with standard-normal entries drawn from `seed`.
Tensor RandomNormal(const Shape& shape, uint64_t seed, float scale = 1.0f);

struct GradientCheckOptions {
  double step = 1e-2;   // Central-difference step h.
  double rtol = 1e-2;   // Allowed relative error...
  double atol = 2e-3;   // ...plus this absolute error.
  int max_checks = 48;  // Elements checked per tensor (input and each parameter), spread evenly.
  uint64_t seed = 7;
};

// Checks every gradient `layer` computes (input and parameters) against central finite
// differences of the scalar objective L = sum_i r_i * y_i, with random fixed r_i, evaluated in
// double precision over the layer's float outputs. Reports failures with gtest.
void ExpectGradientsMatch(Layer& layer, const Tensor& input,
                          const GradientCheckOptions& options = {});

}  // namespace muppet::testing

#endif  // MUPPET_WORKER_NN_GRADIENT_CHECK_H_
