// The key-value store through which the ranks of a job find each other (Gloo's addresses, NCCL's
// unique id), in the shape of PyTorch c10d's Store: set, get with a wait and a deadline, add,
// delete by prefix. Implementations: CoordinatorStore (the coordinator's RendezvousService),
// PrefixStore (a namespace inside another store) and InProcessStore (tests, one process).
#ifndef MUPPET_WORKER_COMM_STORE_H_
#define MUPPET_WORKER_COMM_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/kv_store.h"

namespace muppet::comm {

class Store {
 public:
  virtual ~Store() = default;

  // Sets `key` to `value`, replacing any value. Errors: INVALID_ARGUMENT for a key or value the
  // store cannot hold; UNAVAILABLE when the store cannot be reached.
  virtual absl::Status Set(const std::string& key, const std::string& value) = 0;

  // The values of `keys`, in order, once every key exists. DEADLINE_EXCEEDED naming the missing
  // keys when `timeout` passes first.
  virtual absl::StatusOr<std::vector<std::string>> Get(const std::vector<std::string>& keys,
                                                       absl::Duration timeout) = 0;

  // Adds `delta` to the decimal integer at `key` (a missing key counts as 0) and returns the
  // new value, atomically. FAILED_PRECONDITION if the value is not an integer.
  virtual absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta) = 0;

  // Deletes every key starting with `prefix` (not empty) and returns how many.
  virtual absl::StatusOr<uint64_t> DeletePrefix(const std::string& prefix) = 0;
};

// Keys live in this process's memory (a KeyValueStore, as the coordinator's are), with its key
// and value bounds. Thread-safe.
class InProcessStore final : public Store {
 public:
  absl::Status Set(const std::string& key, const std::string& value) override;
  absl::StatusOr<std::vector<std::string>> Get(const std::vector<std::string>& keys,
                                               absl::Duration timeout) override;
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta) override;
  absl::StatusOr<uint64_t> DeletePrefix(const std::string& prefix) override;

 private:
  KeyValueStore values_;
};

// Every key of `base` prefixed with `prefix` + "/", so that jobs (and the collectives inside a
// job) cannot collide. Does not own `base`, which must outlive it. Thread-safe if `base` is.
class PrefixStore final : public Store {
 public:
  PrefixStore(std::string prefix, Store* base) : prefix_(std::move(prefix) + "/"), base_(base) {}

  absl::Status Set(const std::string& key, const std::string& value) override;
  absl::StatusOr<std::vector<std::string>> Get(const std::vector<std::string>& keys,
                                               absl::Duration timeout) override;
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta) override;
  absl::StatusOr<uint64_t> DeletePrefix(const std::string& prefix) override;

 private:
  const std::string prefix_;
  Store* const base_;
};

}  // namespace muppet::comm

#endif  // MUPPET_WORKER_COMM_STORE_H_
