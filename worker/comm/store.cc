#include "worker/comm/store.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace muppet::comm {

std::string MissingKeys(const std::vector<std::string>& keys, const std::vector<bool>& present) {
  std::vector<std::string> missing;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!present[i]) missing.push_back(absl::StrCat("\"", keys[i], "\""));
  }
  return absl::StrJoin(missing, ", ");
}

absl::Status InProcessStore::Set(const std::string& key, const std::string& value) {
  absl::MutexLock lock(&mu_);
  values_[key] = value;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> InProcessStore::Get(const std::vector<std::string>& keys,
                                                             absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto all_present = [&] {
    for (const std::string& k : keys) {
      if (!values_.count(k)) return false;
    }
    return true;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&all_present), timeout)) {
    std::vector<bool> present;
    for (const std::string& k : keys) present.push_back(values_.count(k) > 0);
    return absl::DeadlineExceededError(absl::StrCat("store: still missing after ",
                                                    absl::FormatDuration(timeout), ": ",
                                                    MissingKeys(keys, present)));
  }
  std::vector<std::string> out;
  for (const std::string& k : keys) out.push_back(values_.at(k));
  return out;
}

absl::StatusOr<int64_t> InProcessStore::Add(const std::string& key, int64_t delta) {
  absl::MutexLock lock(&mu_);
  int64_t value = 0;
  auto it = values_.find(key);
  if (it != values_.end() && !absl::SimpleAtoi(it->second, &value)) {
    return absl::FailedPreconditionError(
        absl::StrCat("store: key \"", key, "\" holds \"", it->second, "\", not an integer"));
  }
  value += delta;
  values_[key] = absl::StrCat(value);
  return value;
}

absl::StatusOr<uint64_t> InProcessStore::DeletePrefix(const std::string& prefix) {
  if (prefix.empty()) return absl::InvalidArgumentError("store: the prefix to delete is empty");
  absl::MutexLock lock(&mu_);
  uint64_t deleted = 0;
  for (auto it = values_.lower_bound(prefix);
       it != values_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    it = values_.erase(it);
    ++deleted;
  }
  return deleted;
}

absl::Status PrefixStore::Set(const std::string& key, const std::string& value) {
  return base_->Set(prefix_ + key, value);
}

absl::StatusOr<std::vector<std::string>> PrefixStore::Get(const std::vector<std::string>& keys,
                                                          absl::Duration timeout) {
  std::vector<std::string> prefixed;
  for (const std::string& k : keys) prefixed.push_back(prefix_ + k);
  return base_->Get(prefixed, timeout);
}

absl::StatusOr<int64_t> PrefixStore::Add(const std::string& key, int64_t delta) {
  return base_->Add(prefix_ + key, delta);
}

absl::StatusOr<uint64_t> PrefixStore::DeletePrefix(const std::string& prefix) {
  if (prefix.empty()) return absl::InvalidArgumentError("store: the prefix to delete is empty");
  return base_->DeletePrefix(prefix_ + prefix);
}

}  // namespace muppet::comm
