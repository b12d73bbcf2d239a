// The shared harness of muppet's C++ benchmarks: wall-clock timing and JSON-line output.
// Each benchmark is a small binary that prints one JSON object per measurement.
#ifndef MUPPET_BENCH_HARNESS_H_
#define MUPPET_BENCH_HARNESS_H_

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace muppet::bench {

// Runs `fn` `warmup` times untimed, then `repeats` times, and returns the fastest run in
// seconds: the least disturbed by other work on a noisy machine.
template <typename Fn>
double BestSeconds(Fn&& fn, int repeats = 5, int warmup = 1) {
  for (int i = 0; i < warmup; ++i) fn();
  double best = 1e300;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// One JSON object, built field by field and printed as a single line.
class JsonLine {
 public:
  JsonLine& Add(const std::string& key, const std::string& value) {
    fields_.emplace_back(key, "\"" + value + "\"");
    return *this;
  }
  JsonLine& Add(const std::string& key, const char* value) { return Add(key, std::string(value)); }
  JsonLine& Add(const std::string& key, double value) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.6g", value);
    fields_.emplace_back(key, buf);
    return *this;
  }
  JsonLine& Add(const std::string& key, long long value) {
    fields_.emplace_back(key, std::to_string(value));
    return *this;
  }
  JsonLine& Add(const std::string& key, int value) { return Add(key, static_cast<long long>(value)); }
  JsonLine& Add(const std::string& key, long value) { return Add(key, static_cast<long long>(value)); }

  void Print() const {
    std::string line = "{";
    for (size_t i = 0; i < fields_.size(); ++i) {
      line += (i ? ", \"" : "\"") + fields_[i].first + "\": " + fields_[i].second;
    }
    std::printf("%s}\n", line.c_str());
    std::fflush(stdout);
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

}  // namespace muppet::bench

#endif  // MUPPET_BENCH_HARNESS_H_
