#include "worker/comm/store.h"

#include "absl/time/clock.h"

namespace muppet::comm {

absl::Status InProcessStore::Set(const std::string& key, const std::string& value) {
  return values_.Set(key, value);
}

absl::StatusOr<std::vector<std::string>> InProcessStore::Get(const std::vector<std::string>& keys,
                                                             absl::Duration timeout) {
  return values_.Get(keys, /*wait=*/true, absl::Now() + timeout);
}

absl::StatusOr<int64_t> InProcessStore::Add(const std::string& key, int64_t delta) {
  return values_.Add(key, delta);
}

absl::StatusOr<uint64_t> InProcessStore::DeletePrefix(const std::string& prefix) {
  return values_.DeletePrefix(prefix);
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
