#include "worker/optim/sgd.h"

#include "gtest/gtest.h"

namespace muppet {
namespace {

// PyTorch's SGD on one scalar, in double.
struct ReferenceSgd {
  double w, v = 0;
  bool first = true;
  void Step(double grad, double lr, double mu, double wd, bool nesterov) {
    const double g = grad + wd * w;
    v = first ? g : mu * v + g;
    w -= lr * (nesterov ? g + mu * v : v);
    first = false;
  }
};

TEST(SgdTest, MatchesPyTorchSemantics) {
  for (bool nesterov : {false, true}) {
    Parameter p("w", {3});
    p.value[0] = 1.0f, p.value[1] = -2.0f, p.value[2] = 0.5f;
    Sgd sgd({&p}, {.momentum = 0.9, .weight_decay = 0.01, .nesterov = nesterov});
    std::vector<ReferenceSgd> ref = {{1.0}, {-2.0}, {0.5}};
    const double grads[4][3] = {{0.3, -0.1, 2.0}, {-0.5, 0.2, 0.0}, {1.0, 1.0, -1.0}, {0.1, 0.0, 0.4}};
    const double lrs[4] = {0.1, 0.1, 0.05, 0.01};
    for (int step = 0; step < 4; ++step) {
      for (int i = 0; i < 3; ++i) {
        p.grad[i] = static_cast<float>(grads[step][i]);
        ref[i].Step(grads[step][i], lrs[step], 0.9, 0.01, nesterov);
      }
      sgd.Step(lrs[step]);
      for (int i = 0; i < 3; ++i) EXPECT_NEAR(p.value[i], ref[i].w, 1e-6) << step << " " << i;
    }
  }
}

}  // namespace
}  // namespace muppet
