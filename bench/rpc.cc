// Coordinator RPC benchmark: SubmitJob and ReportEpoch latency (p50, p99) and throughput with
// 1, 8 and 64 concurrent clients, against an in-process muppetd (its real gRPC server and
// SQLite store on disk) over 127.0.0.1. One JSON line per (method, clients).
//
//   bazel run -c opt //bench:rpc -- [--seconds=3] [--clients=1,8,64] [--durability=process]
//
// ReportEpoch clients act as the rank 0 of one running job each and report consecutive policy
// epochs with the statistics of 64 parameter tensors (resnet20 has 65) under the MUPPET policy,
// so every call runs the policy, stores the decision, the policy state and an event.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/harness.h"
#include "client/client.h"
#include "muppet/v1/worker.grpc.pb.h"
#include "server/server.h"

ABSL_FLAG(double, seconds, 3, "Measured time per (method, clients).");
ABSL_FLAG(std::string, clients, "1,8,64", "Concurrent clients to measure.");
ABSL_FLAG(std::string, durability, "process", "Store durability: process | power.");

namespace muppet::bench {
namespace {

constexpr int kTensors = 64;

v1::JobSpec Spec() {
  v1::JobSpec spec;
  spec.mutable_model()->set_name("resnet20");
  spec.mutable_dataset()->set_name("synthetic");
  v1::SyntheticDataset& s = *spec.mutable_dataset()->mutable_synthetic();
  s.set_channels(3);
  s.set_height(32);
  s.set_width(32);
  s.set_classes(10);
  s.set_train_size(50000);
  s.set_test_size(10000);
  spec.set_batch_size(128);
  spec.set_epochs(200);
  spec.mutable_optimizer()->set_learning_rate(0.1);
  return spec;
}

// Runs `call` from `clients` threads for `seconds`; prints the latency distribution.
void Measure(const std::string& method, int clients, double seconds, const std::string& durability,
             const std::function<std::function<bool()>(int)>& make_call) {
  std::vector<std::vector<double>> latencies(clients);
  std::vector<std::function<bool()>> calls;
  for (int c = 0; c < clients; ++c) calls.push_back(make_call(c));
  std::atomic<bool> failed{false};
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      while (std::chrono::steady_clock::now() < end) {
        const auto t0 = std::chrono::steady_clock::now();
        if (!calls[c]()) {
          failed = true;
          return;
        }
        latencies[c].push_back(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  const auto quantile = [&](double q) {
    return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<size_t>(q * all.size()))];
  };
  JsonLine()
      .Add("bench", "rpc")
      .Add("method", method)
      .Add("clients", clients)
      .Add("durability", durability)
      .Add("calls", static_cast<long long>(all.size()))
      .Add("calls_per_second", all.size() / elapsed)
      .Add("p50_ms", 1e3 * quantile(0.5))
      .Add("p99_ms", 1e3 * quantile(0.99))
      .Add("errors", failed ? 1 : 0)
      .Print();
}

int Run() {
  const std::string durability = absl::GetFlag(FLAGS_durability);
  char dir_template[] = "/tmp/muppet-rpc-bench.XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  Logger log(std::fopen("/dev/null", "w"));
  server::ServerOptions options{.listen = "127.0.0.1:0", .metrics_listen = "127.0.0.1:0",
                                .db_path = dir + "/muppet.db"};
  options.durability = durability == "power" ? server::Durability::kPowerLoss
                                             : server::Durability::kProcessCrash;
  auto server = server::CoordinatorServer::Start(options, &log);
  if (!server.ok()) {
    std::fprintf(stderr, "rpc: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());
  const double seconds = absl::GetFlag(FLAGS_seconds);

  for (absl::string_view text : absl::StrSplit(absl::GetFlag(FLAGS_clients), ',')) {
    int clients = 0;
    if (!absl::SimpleAtoi(text, &clients) || clients < 1) return 1;

    // SubmitJob: each client its own channel, as separate users would be.
    Measure("SubmitJob", clients, seconds, durability, [&](int) {
      auto client = std::make_shared<client::Client>(client::ClientOptions{.server = address});
      const v1::JobSpec spec = Spec();
      return [client, spec] { return client->SubmitJob(spec).ok(); };
    });

    // ReportEpoch: one worker with one job per client. Queued jobs from the SubmitJob round
    // are cancelled first so that each new worker gets the job submitted for it.
    client::Client admin({.server = address});
    const absl::StatusOr<std::vector<v1::Job>> queued = admin.ListJobs({v1::JOB_STATE_QUEUED});
    for (const v1::Job& j : queued.value()) admin.CancelJob(j.id()).IgnoreError();
    Measure("ReportEpoch", clients, seconds, durability, [&](int c) -> std::function<bool()> {
      auto stub = std::shared_ptr<v1::WorkerService::Stub>(v1::WorkerService::NewStub(
          grpc::CreateChannel(address, grpc::InsecureChannelCredentials())));
      const v1::Job job = *admin.SubmitJob(Spec());
      v1::RegisterWorkerRequest reg;
      reg.set_worker_name(absl::StrCat("bench-", text, "-", c));
      reg.add_devices()->set_kind(v1::DEVICE_KIND_CPU);
      v1::RegisterWorkerResponse registered;
      grpc::ClientContext ctx;
      if (!stub->RegisterWorker(&ctx, reg, &registered).ok()) return [] { return false; };
      auto request = std::make_shared<v1::ReportEpochRequest>();
      request->set_worker_id(registered.worker_id());
      request->set_job_id(job.id());
      request->set_attempt(1);
      request->mutable_metrics()->set_train_loss(1.0);
      request->mutable_metrics()->set_samples(50000);
      for (int t = 0; t < kTensors; ++t) {
        v1::TensorGradientStatistics& g = *request->add_gradients();
        g.set_name(absl::StrCat("layer", t, ".weight"));
        g.set_elements(4096);
      }
      auto bits = std::make_shared<uint32_t>(job.progress().precision_bits());
      return [stub, request, bits] {
        request->set_precision_bits(*bits);
        const uint32_t epoch = request->epoch();
        for (int t = 0; t < kTensors; ++t) {
          // Statistics that vary from epoch to epoch, so windows see changing diversity.
          request->mutable_gradients(t)->set_squared_norm(1.0 + (epoch * 7 + t) % 5);
          request->mutable_gradients(t)->set_window_sum_squared_norm(1.0 + (epoch * 3 + t) % 11);
        }
        v1::ReportEpochResponse response;
        grpc::ClientContext ctx;
        if (!stub->ReportEpoch(&ctx, *request, &response).ok()) return false;
        *bits = response.next_precision_bits();
        request->set_epoch(epoch + 1);
        return true;
      };
    });
  }
  (*server)->Shutdown(absl::Seconds(1));
  return 0;
}

}  // namespace
}  // namespace muppet::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return muppet::bench::Run();
}
