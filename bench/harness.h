// The shared harness of muppet's C++ benchmarks: wall-clock timing, JSON-line output, the
// platform line every benchmark starts with, and failing loudly (a benchmark never discards an
// error or times a wrong result).
#ifndef MUPPET_BENCH_HARNESS_H_
#define MUPPET_BENCH_HARNESS_H_

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "kernels/cpu/platform.h"

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
    best = std::min(
        best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// One JSON object, built field by field and printed as a single line.
class JsonLine {
 public:
  JsonLine& Add(const std::string& key, const std::string& value) {
    std::string quoted = "\"";
    for (char c : value) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c == '\n' ? ' ' : c;
    }
    fields_.emplace_back(key, quoted + "\"");
    return *this;
  }
  JsonLine& Add(const std::string& key, const char* value) { return Add(key, std::string(value)); }
  JsonLine& Add(const std::string& key, bool value) {
    fields_.emplace_back(key, value ? "true" : "false");
    return *this;
  }
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
  JsonLine& Add(const std::string& key, int value) {
    return Add(key, static_cast<long long>(value));
  }
  JsonLine& Add(const std::string& key, long value) {
    return Add(key, static_cast<long long>(value));
  }

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

// Prints {"bench", "error"} and exits 1.
[[noreturn]] inline void Fail(const std::string& message) {
  JsonLine().Add("error", message).Print();
  std::exit(1);
}

// Fail()s with `what` and the status unless it is OK.
inline void CheckOk(const absl::Status& status, const std::string& what) {
  if (!status.ok()) Fail(what + ": " + status.ToString());
}

// oneDNN's effective ISA, for "supported": false reasons.
inline std::string OneDnnIsa() { return kernels::OneDnnIsaName(); }

// The first line of every benchmark: what it ran on. Performance figures name the machine kind
// from it (Zen 4 has avx512_core_bf16 in oneDNN's ISA; Zen 3 only avx2).
inline void PrintPlatform(const std::string& bench) {
  const kernels::KernelPlatform p = kernels::DetectKernelPlatform();
  JsonLine()
      .Add("bench", bench)
      .Add("cpu", p.cpu_model)
      .Add("isa", std::string(kernels::IsaName(p.isa)))
      .Add("amx", p.amx)
      .Add("onednn_isa", p.onednn_isa)
      .Add("int8_route", std::string(kernels::Int8RouteName(p.int8_route)))
      .Print();
}

}  // namespace muppet::bench

#endif  // MUPPET_BENCH_HARNESS_H_
