// Helpers shared by the coordinator's source files (coordinator*.cc). Not for other users.
#ifndef MUPPET_SERVER_COORDINATOR_INTERNAL_H_
#define MUPPET_SERVER_COORDINATOR_INTERNAL_H_

#include <algorithm>
#include <string>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "muppet/internal/records.pb.h"
#include "muppet/v1/job.pb.h"
#include "scheduler/precision_policy.h"

namespace muppet::server::coordinator_internal {

inline bool IsFinal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

// Holds workers' devices.
inline bool IsPlaced(v1::JobState state) {
  return state == v1::JOB_STATE_SCHEDULED || state == v1::JOB_STATE_RUNNING;
}

inline std::string StateName(v1::JobState state) {
  return absl::AsciiStrToLower(absl::string_view(v1::JobState_Name(state)).substr(10));
}

inline void SetTime(google::protobuf::Timestamp& t, absl::Time time) {
  const int64_t nanos = absl::ToUnixNanos(time);
  t.set_seconds(nanos / 1000000000);
  t.set_nanos(static_cast<int32_t>(nanos % 1000000000));
}

inline std::string RandomId(absl::string_view prefix) {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* gen = new absl::BitGen();
  absl::MutexLock lock(&mu);
  return absl::StrFormat("%s%016x", prefix, absl::Uniform<uint64_t>(*gen));
}

inline bool IsToken(absl::string_view s, size_t max, absl::string_view extra) {
  return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), [&](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           extra.find(c) != absl::string_view::npos;
  });
}

// The stored key of a submission's request_id (JobRecord.request_id): request ids are each
// owner's own, so that one user's retry never returns another user's job. Owners have no '/'
// (auth.h); jobs without an owner, as before owners existed, keep the bare key.
inline std::string RequestKey(absl::string_view owner, absl::string_view request_id) {
  return owner.empty() ? std::string(request_id) : absl::StrCat(owner, "/", request_id);
}

inline v1::PolicyDiagnostics ToProto(const scheduler::Diagnostics& d) {
  v1::PolicyDiagnostics p;
  if (d.diversity) p.set_diversity(*d.diversity);
  if (d.ratio) p.set_ratio(*d.ratio);
  if (d.threshold) p.set_threshold(*d.threshold);
  if (d.violations) p.set_violations(static_cast<uint32_t>(*d.violations));
  p.set_skipped_tensors(static_cast<uint32_t>(d.skipped_tensors));
  return p;
}

inline absl::Status RequireId(absl::string_view field, const std::string& value) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  return absl::OkStatus();
}

// FAILED_PRECONDITION when `attempt` is not the job's current attempt, or is over while the job
// waits to be placed again.
inline absl::Status CheckAttempt(const v1::Job& j, uint32_t attempt) {
  const bool current = attempt >= 1 && attempt == static_cast<uint32_t>(j.attempts_size()) &&
                       (IsFinal(j.state()) || !j.attempts().rbegin()->has_end_time());
  if (current) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("job ", j.id(), ": attempt ", attempt, " is over (the job is on attempt ",
                   j.attempts_size(), ", ", StateName(j.state()), ")"));
}

// FAILED_PRECONDITION unless `worker_id` runs rank 0 of the unfinished job's current attempt
// `attempt`, which has begun training (BeginAttempt, after the first attempt) when `begun`.
inline absl::Status CheckRankZero(const internal::JobRecord& record, const std::string& worker_id,
                                  uint32_t attempt, bool begun) {
  const v1::Job& j = record.job();
  if (absl::Status s = CheckAttempt(j, attempt); !s.ok()) return s;
  if (IsFinal(j.state()) || j.worker_ids().empty() || j.worker_ids(0) != worker_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", j.id(), " is not running with worker ", worker_id, " as rank 0"));
  }
  if (begun && attempt > 1 && !record.has_begun()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", j.id(), ": attempt ", attempt, " must say where it resumes (BeginAttempt) first"));
  }
  return absl::OkStatus();
}

}  // namespace muppet::server::coordinator_internal

// The three coordinator sources use these unqualified.
namespace muppet::server {
using coordinator_internal::CheckAttempt;
using coordinator_internal::CheckRankZero;
using coordinator_internal::IsFinal;
using coordinator_internal::IsPlaced;
using coordinator_internal::IsToken;
using coordinator_internal::RandomId;
using coordinator_internal::RequestKey;
using coordinator_internal::RequireId;
using coordinator_internal::SetTime;
using coordinator_internal::StateName;
using coordinator_internal::ToProto;
}  // namespace muppet::server

#endif  // MUPPET_SERVER_COORDINATOR_INTERNAL_H_
