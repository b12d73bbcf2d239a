// An in-memory key-value store whose reads can wait for keys: what the coordinator serves as
// RendezvousService (proto/muppet/v1/rendezvous.proto), where ranks of a job publish and wait for
// addresses and ids under their job's prefix, and what worker/comm's InProcessStore wraps.
// Thread-safe.
#ifndef MUPPET_BASE_KV_STORE_H_
#define MUPPET_BASE_KV_STORE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace muppet {

class KeyValueStore {
 public:
  static constexpr size_t kMaxKeyBytes = 512;
  static constexpr size_t kMaxValueBytes = 1 << 20;

  // A bound on the keys under `scope` (a prefix of the key written): how many, and their bytes
  // (keys and values together).
  struct Quota {
    std::string scope;
    size_t max_keys = 0;
    size_t max_bytes = 0;
  };

  // Sets `key`. INVALID_ARGUMENT for a key or value out of bounds; RESOURCE_EXHAUSTED, naming
  // the scope, when the write would take `quota` (if any) past either bound.
  absl::Status Set(const std::string& key, const std::string& value, const Quota* quota = nullptr);

  // The values of `keys`, in order. With `wait`, waits until `deadline` for all of them
  // (DEADLINE_EXCEEDED naming the missing ones); without, NOT_FOUND for a missing key.
  absl::StatusOr<std::vector<std::string>> Get(const std::vector<std::string>& keys, bool wait,
                                               absl::Time deadline);

  // Adds `delta` to the decimal integer at `key` (missing: 0); returns the new value.
  // OUT_OF_RANGE when the sum leaves int64; `quota` as for Set.
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta, const Quota* quota = nullptr);

  // Deletes the keys that start with `prefix`; returns how many.
  absl::StatusOr<uint64_t> DeletePrefix(const std::string& prefix);

  // Ends every wait at once with UNAVAILABLE.
  void Shutdown();

 private:
  // OK if setting `key` to `value` keeps `quota` (if any).
  absl::Status CheckQuota(const std::string& key, const std::string& value, const Quota* quota)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  absl::CondVar changed_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::string> values_ ABSL_GUARDED_BY(mu_);
};

}  // namespace muppet

#endif  // MUPPET_BASE_KV_STORE_H_
