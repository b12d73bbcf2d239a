#include "server/postgres_cluster.h"

#include <postgresql/libpq-fe.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"

namespace muppet::server {
namespace {

constexpr char kBin[] = "/usr/lib/postgresql/15/bin";

// Runs `command` through the shell (as the postgres user when this process is root); its
// output on failure.
absl::Status Run(const std::string& command) {
  const std::string line =
      absl::StrCat(::geteuid() == 0 ? "/usr/sbin/runuser -u postgres -- " : "", command, " 2>&1");
  FILE* out = ::popen(line.c_str(), "r");
  if (out == nullptr) return absl::InternalError(absl::StrCat("cannot run: ", line));
  std::string output;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), out)) > 0;) output.append(buffer, n);
  const int status = ::pclose(out);
  if (status != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(line, " failed (status ", status, "): ", output));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresCluster>> PostgresCluster::Start() {
  if (!std::filesystem::exists(absl::StrCat(kBin, "/initdb"))) {
    return absl::NotFoundError(absl::StrCat(kBin, "/initdb: PostgreSQL 15 is not installed"));
  }
  // Short and outside the test's (root-only) directory: the socket path has a length limit,
  // and the server's user must reach it.
  std::string dir = "/tmp/muppet-pg-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) return absl::InternalError("mkdtemp failed");
  std::unique_ptr<PostgresCluster> cluster(new PostgresCluster(dir));
  if (::geteuid() == 0) {
    const passwd* postgres = ::getpwnam("postgres");
    if (postgres == nullptr || ::chown(dir.c_str(), postgres->pw_uid, postgres->pw_gid) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir, ": cannot hand the directory to the postgres user"));
    }
  }
  if (absl::Status s = Run(absl::StrCat(kBin, "/initdb -D ", dir, "/data -U muppet -A trust ",
                                        "--no-sync -E UTF8 --no-instructions"));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Run(absl::StrCat(kBin, "/pg_ctl -D ", dir, "/data -l ", dir,
                                        "/server.log -w -t 60 -o \"-k ", dir,
                                        " -c listen_addresses= -c fsync=off\" start"));
      !s.ok()) {
    return s;
  }
  return cluster;
}

PostgresCluster::~PostgresCluster() {
  Run(absl::StrCat(kBin, "/pg_ctl -D ", dir_, "/data -m immediate -w stop")).IgnoreError();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string PostgresCluster::Uri(const std::string& database) const {
  return absl::StrCat("postgresql:///", database, "?host=", dir_, "&user=muppet");
}

absl::Status PostgresCluster::Exec(const std::string& database, const std::string& sql) {
  PGconn* conn = PQconnectdb(Uri(database).c_str());
  absl::Status status;
  if (PQstatus(conn) != CONNECTION_OK) {
    status = absl::UnavailableError(absl::StrCat(Uri(database), ": ", PQerrorMessage(conn)));
  } else {
    PGresult* r = PQexec(conn, sql.c_str());
    const ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
      status = absl::InternalError(absl::StrCat(sql, ": ", PQresultErrorMessage(r)));
    }
    PQclear(r);
  }
  PQfinish(conn);
  return status;
}

absl::StatusOr<std::string> PostgresCluster::CreateDatabase(const std::string& name) {
  if (absl::Status s = Exec("postgres", absl::StrCat("CREATE DATABASE \"", name, "\"")); !s.ok()) {
    return s;
  }
  return Uri(name);
}

}  // namespace muppet::server
