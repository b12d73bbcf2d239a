#include "worker/comm/gloo_store.h"

#include "gloo/common/error.h"

namespace muppet::comm {

void GlooStore::set(const std::string& key, const std::vector<char>& data) {
  if (absl::Status s = store_.Set(key, std::string(data.begin(), data.end())); !s.ok()) Throw(s);
}

std::vector<char> GlooStore::get(const std::string& key) {
  absl::StatusOr<std::vector<std::string>> values = store_.Get({key}, timeout_);
  if (!values.ok()) Throw(values.status());
  return std::vector<char>(values->front().begin(), values->front().end());
}

void GlooStore::wait(const std::vector<std::string>& keys) {
  if (absl::StatusOr<std::vector<std::string>> v = store_.Get(keys, timeout_); !v.ok())
    Throw(v.status());
}

void GlooStore::wait(const std::vector<std::string>& keys,
                     const std::chrono::milliseconds& timeout) {
  // Gloo passes kNoTimeout (zero) for "no deadline": ours is then the adapter's own.
  const absl::Duration wait = timeout.count() > 0 ? absl::FromChrono(timeout) : timeout_;
  if (absl::StatusOr<std::vector<std::string>> v = store_.Get(keys, wait); !v.ok())
    Throw(v.status());
}

absl::Status GlooStore::first_error() const {
  absl::MutexLock lock(&mu_);
  return first_error_;
}

void GlooStore::Throw(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (first_error_.ok()) first_error_ = status;
  }
  throw gloo::IoException(std::string(status.ToString()));
}

}  // namespace muppet::comm
