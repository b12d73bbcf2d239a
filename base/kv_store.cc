#include "base/kv_store.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace muppet {
namespace {

absl::Status CheckKey(const std::string& key) {
  if (key.empty() || key.size() > KeyValueStore::kMaxKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("key: must be 1 to ",
                                                   KeyValueStore::kMaxKeyBytes,
                                                   " bytes, got ", key.size()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status KeyValueStore::CheckQuota(const std::string& key, const std::string& value,
                                       const Quota* quota) {
  if (quota == nullptr) return absl::OkStatus();
  // The scope as it would be after the write: its other keys, and this one.
  size_t keys = 1, bytes = 0;
  for (auto it = values_.lower_bound(quota->scope);
       it != values_.end() && it->first.compare(0, quota->scope.size(), quota->scope) == 0; ++it) {
    if (it->first == key) continue;
    ++keys;
    bytes += it->first.size() + it->second.size();
  }
  bytes += key.size() + value.size();
  if (keys > quota->max_keys || bytes > quota->max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("rendezvous quota of ", quota->scope, ": at most ", quota->max_keys,
                     " keys and ", quota->max_bytes, " bytes, and this write would make ", keys,
                     " keys and ", bytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status KeyValueStore::Set(const std::string& key, const std::string& value,
                                const Quota* quota) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  if (value.size() > kMaxValueBytes) {
    return absl::InvalidArgumentError(absl::StrCat("value: must be at most ", kMaxValueBytes,
                                                   " bytes, got ", value.size()));
  }
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckQuota(key, value, quota); !s.ok()) return s;
  values_[key] = value;
  changed_.SignalAll();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> KeyValueStore::Get(const std::vector<std::string>& keys,
                                                              bool wait, absl::Time deadline) {
  if (keys.empty() || keys.size() > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("keys: must have 1 to 1024 entries, got ", keys.size()));
  }
  for (const std::string& key : keys) {
    if (absl::Status s = CheckKey(key); !s.ok()) return s;
  }
  absl::MutexLock lock(&mu_);
  while (true) {
    if (shut_down_) return absl::UnavailableError("the coordinator is shutting down");
    std::vector<std::string> missing;
    for (const std::string& key : keys) {
      if (values_.count(key) == 0) missing.push_back(key);
    }
    if (missing.empty()) break;
    if (!wait) {
      return absl::NotFoundError(absl::StrCat("keys not set: ", absl::StrJoin(missing, ", ")));
    }
    if (changed_.WaitWithDeadline(&mu_, deadline)) {
      return absl::DeadlineExceededError(
          absl::StrCat("timed out waiting for keys: ", absl::StrJoin(missing, ", ")));
    }
  }
  std::vector<std::string> values;
  for (const std::string& key : keys) values.push_back(values_.at(key));
  return values;
}

absl::StatusOr<int64_t> KeyValueStore::Add(const std::string& key, int64_t delta,
                                           const Quota* quota) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  int64_t value = 0;
  const auto it = values_.find(key);
  if (it != values_.end() && !absl::SimpleAtoi(it->second, &value)) {
    return absl::FailedPreconditionError(
        absl::StrCat("key ", key, " does not hold a decimal integer"));
  }
  const int64_t before = value;
  if (__builtin_add_overflow(before, delta, &value)) {
    return absl::OutOfRangeError(
        absl::StrCat("key ", key, ": adding ", delta, " to ", before, " leaves the 64-bit range"));
  }
  std::string text = absl::StrCat(value);
  if (absl::Status s = CheckQuota(key, text, quota); !s.ok()) return s;
  values_[key] = std::move(text);
  changed_.SignalAll();
  return value;
}

absl::StatusOr<uint64_t> KeyValueStore::DeletePrefix(const std::string& prefix) {
  if (prefix.empty()) return absl::InvalidArgumentError("prefix: must not be empty");
  absl::MutexLock lock(&mu_);
  uint64_t deleted = 0;
  for (auto it = values_.lower_bound(prefix);
       it != values_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    it = values_.erase(it);
    ++deleted;
  }
  return deleted;
}

void KeyValueStore::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  changed_.SignalAll();
}

}  // namespace muppet
