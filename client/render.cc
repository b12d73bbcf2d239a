#include "client/render.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "proto/precision.h"

namespace muppet::client {
namespace {

using Row = std::vector<std::string>;

std::string Table(const std::vector<Row>& rows) {
  std::vector<size_t> width;
  for (const Row& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const Row& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

std::string Age(absl::Duration d) {
  const int64_t s = absl::ToInt64Seconds(d);
  if (s < 120) return absl::StrCat(s, "s");
  if (s < 7200) return absl::StrCat(s / 60, "m");
  if (s < 172800) return absl::StrCat(s / 3600, "h");
  return absl::StrCat(s / 86400, "d");
}

std::string Optional(bool has, double value, const char* format) {
  return has ? absl::StrFormat(format, value) : "-";
}

std::string Epochs(const google::protobuf::RepeatedField<uint32_t>& epochs) {
  return epochs.empty() ? "none" : absl::StrJoin(epochs, ", ");
}

// What the worker's kernels run: "avx512, onednn avx512_core_bf16, int8 onednn-vnni".
std::string Kernels(const v1::CpuInfo& cpu) {
  if (cpu.kernel_isa().empty()) return "-";  // A worker older than these fields.
  return absl::StrCat(cpu.kernel_isa(), ", onednn ", cpu.onednn_isa(), ", int8 ", cpu.int8_route());
}

}  // namespace

std::string PrecisionName(uint32_t bits) {
  return bits == kFp32Bits ? "fp32" : absl::StrCat("fixed", bits);
}

std::string StateName(v1::JobState state) {
  return absl::AsciiStrToLower(absl::string_view(v1::JobState_Name(state)).substr(10));
}

std::string JobsTable(const std::vector<v1::Job>& jobs, absl::Time now) {
  std::vector<Row> rows = {
      {"ID", "NAME", "STATE", "MODEL", "PRECISION", "EPOCH", "LOSS", "ACCURACY", "AGE"}};
  for (const v1::Job& j : jobs) {
    const v1::JobProgress& p = j.progress();
    rows.push_back({j.id(), j.spec().name().empty() ? "-" : j.spec().name(), StateName(j.state()),
                    j.spec().model().name(), PrecisionName(p.precision_bits()),
                    absl::StrCat(p.epochs_completed()),
                    Optional(p.has_train_loss(), p.train_loss(), "%.4f"),
                    Optional(p.has_test_accuracy(), p.test_accuracy(), "%.4f"),
                    Age(now - FromProto(j.create_time()))});
  }
  return Table(rows);
}

std::string WorkersTable(const std::vector<v1::WorkerInfo>& workers) {
  std::vector<Row> rows = {
      {"ID", "NAME", "STATE", "DEVICES", "FREE", "JOBS", "CPU", "KERNELS", "VERSION"}};
  for (const v1::WorkerInfo& w : workers) {
    int cpu = 0, cuda = 0;
    for (const v1::Device& d : w.devices()) (d.kind() == v1::DEVICE_KIND_CUDA ? cuda : cpu) += 1;
    std::string devices = absl::StrCat(cpu, " cpu");
    if (cuda > 0) absl::StrAppend(&devices, " + ", cuda, " cuda");
    rows.push_back(
        {w.worker_id(), w.worker_name(),
         absl::AsciiStrToLower(absl::string_view(v1::WorkerState_Name(w.state())).substr(13)),
         devices, absl::StrCat(w.free_devices()),
         w.job_ids().empty() ? "-" : absl::StrJoin(w.job_ids(), ","),
         absl::StrCat(
             w.cpu().cores(), " cores ",
             w.cpu().isa_features().empty() ? "" : absl::StrJoin(w.cpu().isa_features(), "/")),
         Kernels(w.cpu()), w.version()});
  }
  return Table(rows);
}

std::string JobDetails(const v1::Job& j) {
  const v1::JobProgress& p = j.progress();
  std::string out = absl::StrCat(
      "id:          ", j.id(), "\nname:        ", j.spec().name(),
      "\nstate:       ", StateName(j.state()),
      "\nowner:       ", j.owner().empty() ? "-" : j.owner(),
      "\nmodel:       ", j.spec().model().name(), " on ", j.spec().dataset().name(), ", batch ",
      j.spec().batch_size(), ", ", j.spec().epochs(), " epochs",
      "\nprecision:   ", PrecisionName(p.precision_bits()), "\nepochs done: ", p.epochs_completed(),
      " (policy epochs)", "\nloss:        ", Optional(p.has_train_loss(), p.train_loss(), "%.4f"),
      "\naccuracy:    ", Optional(p.has_test_accuracy(), p.test_accuracy(), "%.4f"),
      "\nswitches at: ", Epochs(p.switch_epochs()),
      "\nworkers:     ", j.worker_ids().empty() ? "-" : absl::StrJoin(j.worker_ids(), ", "),
      "\ncreated:     ",
      absl::FormatTime(absl::RFC3339_sec, FromProto(j.create_time()), absl::LocalTimeZone()), "\n");
  if (!j.reason().empty()) absl::StrAppend(&out, "reason:      ", j.reason(), "\n");
  if (p.has_last_checkpoint()) {
    absl::StrAppend(&out, "checkpoint:  ", CheckpointText(p.last_checkpoint()), "\n");
  }
  absl::StrAppend(&out, "attempts:    ", j.attempts_size(), " (at most ",
                  j.spec().max_restarts() + 1, ")\n");
  for (const v1::JobAttempt& a : j.attempts()) absl::StrAppend(&out, AttemptText(a), "\n");
  if (j.has_result()) absl::StrAppend(&out, JobSummary(j));
  return out;
}

std::string CheckpointText(const v1::CheckpointInfo& c) {
  return absl::StrFormat("epoch %u (policy epoch %u, %s) %s, %.1f MB, crc32c %08x", c.epoch(),
                         c.policy_epoch(), PrecisionName(c.precision_bits()), c.path(),
                         c.size_bytes() / 1e6, c.crc32c());
}

std::string AttemptText(const v1::JobAttempt& a) {
  const auto time = [](const google::protobuf::Timestamp& t) {
    return absl::FormatTime(absl::RFC3339_sec, FromProto(t), absl::LocalTimeZone());
  };
  std::string out =
      absl::StrCat("  ", a.attempt(), ": on ",
                   a.worker_ids().empty() ? "-" : absl::StrJoin(a.worker_ids(), ", "));
  if (a.has_start_time()) absl::StrAppend(&out, " from ", time(a.start_time()));
  absl::StrAppend(&out, a.has_end_time() ? absl::StrCat(" to ", time(a.end_time())) : " (current)");
  if (a.has_resumed_from()) {
    absl::StrAppend(&out, ", resumed from epoch ", a.resumed_from().epoch(), " (",
                    a.resumed_from().path(), ")");
  } else if (a.attempt() > 1) {
    absl::StrAppend(&out, ", from the beginning");
  }
  if (!a.end_reason().empty()) absl::StrAppend(&out, "; ended: ", a.end_reason());
  return out;
}

std::string JobSummary(const v1::Job& j) {
  std::string out = absl::StrCat("job ", j.id(), " ", StateName(j.state()));
  if (!j.reason().empty()) absl::StrAppend(&out, ": ", j.reason());
  absl::StrAppend(&out, "\n");
  if (j.has_result()) {
    const v1::JobResult& r = j.result();
    absl::StrAppend(&out, absl::StrFormat("  test accuracy   %.4f\n", r.test_accuracy()),
                    absl::StrFormat("  training time   %.1f s\n", r.wall_seconds()),
                    "  switch epochs   ", Epochs(r.switch_epochs()),
                    " (training epochs; policy epochs: ", Epochs(j.progress().switch_epochs()),
                    ")\n");
  }
  return out;
}

WatchDisplay::WatchDisplay(FILE* out, bool live, const v1::Job& job)
    : out_(out),
      live_(live),
      epochs_(job.spec().epochs()),
      bits_(job.progress().precision_bits()) {}

void WatchDisplay::Line(const std::string& text) {
  if (live_ && bar_shown_) std::fputs("\r\033[K", out_);
  std::fprintf(out_, "%s\n", text.c_str());
  bar_shown_ = false;
  if (live_) Draw();
}

void WatchDisplay::Draw() {
  constexpr int kWidth = 30;
  const double fraction = epochs_ == 0 ? 0 : std::min(1.0, double(train_epoch_) / epochs_);
  const int filled = static_cast<int>(fraction * kWidth);
  std::fprintf(out_, "\r\033[Kepoch %u/%u [%s%s] %s  policy epoch %u  loss %s  accuracy %s",
               train_epoch_, epochs_, std::string(filled, '#').c_str(),
               std::string(kWidth - filled, '.').c_str(), PrecisionName(bits_).c_str(),
               policy_epoch_, loss_ < 0 ? "-" : absl::StrFormat("%.4f", loss_).c_str(),
               accuracy_ < 0 ? "-" : absl::StrFormat("%.4f", accuracy_).c_str());
  std::fflush(out_);
  bar_shown_ = true;
}

void WatchDisplay::OnEvent(const v1::JobEvent& e) {
  if (e.has_state_change()) {
    const v1::StateChange& s = e.state_change();
    Line(absl::StrCat("state ", StateName(s.to()), s.reason().empty() ? "" : ": ", s.reason()));
  } else if (e.has_precision_switch()) {
    const v1::PrecisionSwitch& s = e.precision_switch();
    const v1::PolicyDiagnostics& d = s.diagnostics();
    std::string why;
    if (d.has_ratio() && d.has_threshold()) {
      why = absl::StrFormat(" (diversity ratio %.3g > threshold %.3g, %u violations)", d.ratio(),
                            d.threshold(), d.violations());
    }
    bits_ = s.to_bits();
    Line(absl::StrCat("precision switch at policy epoch ", s.epoch(), ": ",
                      PrecisionName(s.from_bits()), " -> ", PrecisionName(s.to_bits()), why));
  } else if (e.has_ladder_choice()) {
    const v1::LadderChoice& c = e.ladder_choice();
    std::string levels;
    for (const v1::LadderChoice::Level& l : c.levels()) {
      absl::StrAppendFormat(&levels, " %s %u (%.2fx)", l.kept() ? "kept" : "dropped", l.bits(),
                            l.speedup_vs_fp32());
    }
    bits_ = c.ladder().empty() ? 32 : c.ladder(0);
    Line(absl::StrFormat("ladder measured against FP32 (%.1f ms a step):%s; starting at %s",
                         c.fp32_step_seconds() * 1e3, levels, PrecisionName(bits_)));
  } else if (e.has_checkpoint()) {
    Line(absl::StrCat("checkpoint at ", CheckpointText(e.checkpoint())));
  } else if (e.has_attempt_start()) {
    const v1::AttemptStart& a = e.attempt_start();
    for (const std::string& skipped : a.skipped()) {
      Line(absl::StrCat("checkpoint skipped: ", skipped));
    }
    if (a.has_resumed_from()) {
      bits_ = a.resumed_from().precision_bits();
      policy_epoch_ = a.resumed_from().policy_epoch();
      train_epoch_ = a.resumed_from().epoch();
    } else {
      policy_epoch_ = train_epoch_ = 0;
    }
    Line(absl::StrCat(
        "attempt ", a.attempt(), " resumed from ",
        a.has_resumed_from() ? CheckpointText(a.resumed_from()) : std::string("the beginning")));
  } else if (e.has_epoch()) {
    const v1::EpochReport& r = e.epoch();
    policy_epoch_ = r.epoch() + 1;
    train_epoch_ = std::max(train_epoch_, r.metrics().train_epoch());
    if (r.metrics().has_train_loss()) loss_ = r.metrics().train_loss();
    if (r.metrics().has_test_accuracy()) {
      accuracy_ = r.metrics().test_accuracy();
      train_epoch_ = std::max(train_epoch_, r.metrics().train_epoch() + 1);
    }
    if (live_) {
      Draw();
    } else {
      Line(absl::StrFormat(
          "policy epoch %u (epoch %u) %s loss %.4f%s%s %.2f s", r.epoch(),
          r.metrics().train_epoch(), PrecisionName(r.precision_bits()), r.metrics().train_loss(),
          r.metrics().has_test_accuracy()
              ? absl::StrFormat(" accuracy %.4f", r.metrics().test_accuracy())
              : "",
          r.metrics().has_rank_gradient_diversity()
              ? absl::StrFormat(" rank-diversity %.3f", r.metrics().rank_gradient_diversity())
              : "",
          r.metrics().seconds()));
    }
  }
}

}  // namespace muppet::client
