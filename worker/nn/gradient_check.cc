#include "worker/nn/gradient_check.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/random.h"
#include "gtest/gtest.h"

namespace muppet::testing {
namespace {

// Evenly spread indices into a tensor of `size` elements, at most `count` of them.
std::vector<int64_t> SampleIndices(int64_t size, int count) {
  std::vector<int64_t> indices;
  const int64_t n = std::min<int64_t>(size, count);
  for (int64_t i = 0; i < n; ++i) indices.push_back(i * size / n);
  return indices;
}

double Objective(Layer& layer, const Tensor& input, const Tensor& r) {
  const Tensor& y = layer.Forward(input, Mode::kTrain);
  double sum = 0;
  for (int64_t i = 0; i < y.size(); ++i) sum += static_cast<double>(r[i]) * y[i];
  return sum;
}

// Perturbs *value around its current value and returns the central difference of L.
double NumericDerivative(Layer& layer, const Tensor& input, const Tensor& r, float* value,
                         double h) {
  const float saved = *value;
  *value = static_cast<float>(saved + h);
  const double plus = Objective(layer, input, r);
  *value = static_cast<float>(saved - h);
  const double minus = Objective(layer, input, r);
  *value = saved;
  return (plus - minus) / (2 * h);
}

void ExpectClose(double analytic, double numeric, const GradientCheckOptions& o,
                 const std::string& what) {
  const double tolerance = o.atol + o.rtol * std::max(std::abs(analytic), std::abs(numeric));
  EXPECT_NEAR(analytic, numeric, tolerance) << what;
}

}  // namespace

Tensor RandomNormal(const Shape& shape, uint64_t seed, float scale) {
  Tensor t(shape);
  Rng rng(seed);
  for (int64_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(rng.Normal()) * scale;
  return t;
}

void ExpectGradientsMatch(Layer& layer, const Tensor& input, const GradientCheckOptions& o) {
  Tensor x = input.Clone();
  const Tensor r = RandomNormal(layer.OutputShape(x.shape()), o.seed);
  const Tensor& y = layer.Forward(x, Mode::kTrain);
  ASSERT_EQ(y.shape(), r.shape()) << "Forward disagrees with OutputShape";
  const Tensor grad_input = layer.Backward(r).Clone();
  std::vector<Parameter*> params;
  layer.CollectParameters(params);
  std::vector<Tensor> param_grads;
  for (Parameter* p : params) param_grads.push_back(p->grad.Clone());

  ASSERT_EQ(grad_input.shape(), x.shape());
  for (int64_t i : SampleIndices(x.size(), o.max_checks)) {
    ExpectClose(grad_input[i], NumericDerivative(layer, x, r, &x[i], o.step), o,
                "dL/dinput[" + std::to_string(i) + "]");
  }
  for (size_t p = 0; p < params.size(); ++p) {
    for (int64_t i : SampleIndices(params[p]->value.size(), o.max_checks)) {
      ExpectClose(param_grads[p][i], NumericDerivative(layer, x, r, &params[p]->value[i], o.step),
                  o, "dL/d" + params[p]->name + "[" + std::to_string(i) + "]");
    }
  }
}

}  // namespace muppet::testing
