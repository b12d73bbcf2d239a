// Throughput of the MuPPET quantiser (kernels/cpu/quantize.h) on each instruction set: min/max
// scan and conversion, for a resnet20 activation (batch 128, 16 channels, 28x28: 1.6M floats),
// on every core (the vector paths split large tensors across OpenMP threads; the scalar path is
// the single-threaded reference). One JSON line per (isa, word length, rounding), with the speed
// ratio against the scalar path measured in the same run. Then the range alone, per ISA: MinMax
// of the whole tensor (from memory, every core), and a producer's RangeScan of the same elements
// a 16 KB block at a time while the block is in cache (one thread, one block scanned as often as
// the tensor has blocks), as the layers gather it.
#include "kernels/cpu/quantize.h"

#include <random>
#include <vector>

#include "bench/harness.h"

namespace muppet::bench {
namespace {

using kernels::Isa;

template <typename Code>
double QuantizeSeconds(const std::vector<float>& x, int wl, kernels::Rounding rounding, Isa isa) {
  std::vector<Code> codes(x.size());
  return BestSeconds([&] {
    const absl::StatusOr<kernels::Range> r = kernels::MinMax(x, isa);
    CheckOk(r.status(), "MinMax");
    kernels::Quantize(x,
                      {.word_length = wl,
                       .exponent = kernels::ScaleExponent(*r, wl),
                       .rounding = rounding,
                       .seed = 1,
                       .stream = 2},
                      std::span<Code>(codes), isa);
  });
}

// Seconds to scan x's range from memory (MinMax), and as in-cache blocks (RangeScan); both check
// the range they find.
struct RangeTimes {
  double from_memory, in_cache;
};
RangeTimes RangeSeconds(const std::vector<float>& x, Isa isa) {
  const absl::StatusOr<kernels::Range> expected = kernels::MinMax(x, kernels::Isa::kScalar);
  CheckOk(expected.status(), "MinMax");
  constexpr int64_t kBlockFloats = kernels::kInCacheElements;  // As the layers' blocks.
  const int64_t n = static_cast<int64_t>(x.size()), blocks = n / kBlockFloats;
  kernels::RangeScan scan;
  const double in_cache = BestSeconds([&] {
    scan = {};
    for (int64_t b = 0; b < blocks; ++b) scan.Add(x.data(), kBlockFloats, isa);
  });
  kernels::RangeScan first_block;
  first_block.Add(x.data(), kBlockFloats, kernels::Isa::kScalar);
  if (scan.range()->min != first_block.min || scan.range()->max != first_block.max) {
    Fail("RangeScan disagrees with the scalar scan");
  }
  const double from_memory = BestSeconds([&] {
    const absl::StatusOr<kernels::Range> r = kernels::MinMax(x, isa);
    CheckOk(r.status(), "MinMax");
    if (r->min != expected->min || r->max != expected->max) Fail("MinMax disagrees with scalar");
  });
  return {from_memory, in_cache};
}

}  // namespace
}  // namespace muppet::bench

int main() {
  muppet::bench::PrintPlatform("quantize");
  using namespace muppet;
  using kernels::Isa;
  using kernels::Rounding;
  const int64_t n = 128LL * 16 * 28 * 28;
  std::vector<float> x(n);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : x) v = normal(rng);
  for (int wl : {8, 16}) {
    for (Rounding rounding : {Rounding::kStochastic, Rounding::kNearest}) {
      double scalar = 0;
      for (Isa isa : kernels::SupportedIsas()) {
        if (isa > kernels::ActiveIsa()) continue;  // MUPPET_ISA caps the benchmark too.
        const double seconds = wl <= 8 ? bench::QuantizeSeconds<int8_t>(x, wl, rounding, isa)
                                       : bench::QuantizeSeconds<int16_t>(x, wl, rounding, isa);
        if (isa == Isa::kScalar) scalar = seconds;
        bench::JsonLine()
            .Add("bench", "quantize")
            .Add("isa", std::string(kernels::IsaName(isa)))
            .Add("word_length", wl)
            .Add("rounding", rounding == Rounding::kStochastic ? "stochastic" : "nearest")
            .Add("elements", static_cast<long long>(n))
            .Add("ms", seconds * 1e3)
            .Add("gelements_per_second", n / seconds / 1e9)
            .Add("speedup_vs_scalar", scalar / seconds)
            .Print();
      }
    }
  }
  for (Isa isa : kernels::SupportedIsas()) {
    if (isa > kernels::ActiveIsa()) continue;
    const bench::RangeTimes t = bench::RangeSeconds(x, isa);
    bench::JsonLine()
        .Add("bench", "quantize")
        .Add("op", "range")
        .Add("isa", std::string(kernels::IsaName(isa)))
        .Add("elements", static_cast<long long>(n))
        .Add("minmax_ms", t.from_memory * 1e3)
        .Add("in_cache_scan_ms", t.in_cache * 1e3)
        .Print();
  }
}
