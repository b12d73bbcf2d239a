// The C++ client library of muppet's JobService. Every call carries a deadline (the client's
// timeout) and, when a token is set, the bearer token; errors come back as absl::Status with
// the server's code and message (UNAVAILABLE names the address when muppetd cannot be reached).
#ifndef MUPPET_CLIENT_CLIENT_H_
#define MUPPET_CLIENT_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/tls.h"
#include "grpcpp/grpcpp.h"
#include "muppet/v1/job.grpc.pb.h"

namespace muppet::client {

struct ClientOptions {
  std::string server = "127.0.0.1:7070";  // host:port of muppetd.
  std::string token;                      // Bearer token; empty sends none.
  ClientTls tls;                          // TLS (loaded), or plaintext by default.
  absl::Duration timeout = absl::Seconds(10);  // Deadline of each unary call.
  // How long WatchJob keeps reconnecting while muppetd is unavailable (a restart).
  absl::Duration reconnect_window = absl::Seconds(60);
};

class Client {
 public:
  explicit Client(const ClientOptions& options);

  // Submits `spec`; the reply comes once the job is stored. `request_id` makes retries safe.
  absl::StatusOr<v1::Job> SubmitJob(const v1::JobSpec& spec, const std::string& request_id = "");

  // One job, by id.
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id);

  // Jobs, newest first, in `states` (all when empty), of `owner` (every owner when empty; a
  // user's token lists its own only), at most `limit` (0: all), following pages.
  absl::StatusOr<std::vector<v1::Job>> ListJobs(const std::vector<v1::JobState>& states = {},
                                                size_t limit = 0, const std::string& owner = "");

  // Cancels a queued or running job.
  absl::StatusOr<v1::Job> CancelJob(const std::string& job_id, const std::string& reason = "");

  // Every worker the coordinator knows.
  absl::StatusOr<std::vector<v1::WorkerInfo>> ListWorkers();  // Every page, by name.

  // Calls `on_event` for each event of the job from `from_sequence`, until the job ends (OK),
  // `on_event` returns false (OK), or the stream fails. No deadline: a job may run for days.
  // When muppetd becomes unavailable (a restart), reconnects with backoff and resumes after the
  // last event delivered, for up to options.reconnect_window; no event is delivered twice.
  absl::Status WatchJob(const std::string& job_id, uint64_t from_sequence,
                        const std::function<bool(const v1::JobEvent&)>& on_event);

  const ClientOptions& options() const { return options_; }

 private:
  // A context with the deadline (when `deadline`) and token set.
  std::unique_ptr<grpc::ClientContext> Context(bool deadline) const;
  // The call's status, saying which server did not answer, and after how long.
  absl::Status Explain(const grpc::Status& status) const;

  ClientOptions options_;
  std::unique_ptr<v1::JobService::Stub> stub_;
};

}  // namespace muppet::client

#endif  // MUPPET_CLIENT_CLIENT_H_
