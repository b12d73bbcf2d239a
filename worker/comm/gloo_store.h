// Gloo's rendezvous store over ours, so that Gloo's connectFullMesh exchanges addresses through
// a muppet Store (the coordinator's, in the service). Gloo's base class ignores the timeout of a
// timed wait; this adapter honours it, so a missing peer ends rendezvous on time.
#ifndef MUPPET_WORKER_COMM_GLOO_STORE_H_
#define MUPPET_WORKER_COMM_GLOO_STORE_H_

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gloo/rendezvous/store.h"
#include "worker/comm/store.h"

namespace muppet::comm {

class GlooStore final : public gloo::rendezvous::Store {
 public:
  // `store` must outlive the adapter. `timeout` bounds the waits Gloo makes without one (get,
  // untimed wait).
  GlooStore(comm::Store& store, absl::Duration timeout) : store_(store), timeout_(timeout) {}

  // Gloo's interface reports errors by exception: each method throws gloo::IoException, after
  // recording the Status, which first_error() then returns.
  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys,
            const std::chrono::milliseconds& timeout) override;

  // The first error a call met (OK if none). Thread-safe.
  absl::Status first_error() const;

 private:
  // Records `status` (not OK) and throws it as a gloo::IoException.
  [[noreturn]] void Throw(const absl::Status& status);

  comm::Store& store_;
  const absl::Duration timeout_;
  mutable absl::Mutex mu_;
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace muppet::comm

#endif  // MUPPET_WORKER_COMM_GLOO_STORE_H_
