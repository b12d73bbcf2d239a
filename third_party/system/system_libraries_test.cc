// Every @system target links and does real work: a regression test for the offline build's
// link flags, run before anything heavier depends on them.
#include <openssl/sha.h>
#include <sqlite3.h>

#include <memory>
#include <sstream>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gloo/rendezvous/hash_store.h"
#include "gtest/gtest.h"
#include "muppet/v1/rendezvous.grpc.pb.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"

namespace muppet {
namespace {

TEST(SystemLibrariesTest, GrpcServesGeneratedServiceOverLoopback) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  v1::RendezvousService::Service unimplemented;  // Every method answers UNIMPLEMENTED.
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&unimplemented);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);

  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::RendezvousService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::SetRequest request;
  request.set_key("k");
  v1::SetResponse response;
  EXPECT_EQ(stub->Set(&context, request, &response).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  server->Shutdown();
}

TEST(SystemLibrariesTest, OneDnnRunsAMatmul) {
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  using tag = dnnl::memory::format_tag;
  using dt = dnnl::memory::data_type;
  dnnl::memory::desc a_md({2, 3}, dt::f32, tag::ab), b_md({3, 2}, dt::f32, tag::ab),
      c_md({2, 2}, dt::f32, tag::ab);
  std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {7, 8, 9, 10, 11, 12}, c(4);
  dnnl::memory am(a_md, engine, a.data()), bm(b_md, engine, b.data()), cm(c_md, engine, c.data());
  dnnl::matmul matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), engine));
  matmul.execute(stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
  stream.wait();
  EXPECT_EQ(c, (std::vector<float>{58, 64, 139, 154}));
}

TEST(SystemLibrariesTest, GlooStoreRoundTrips) {
  gloo::rendezvous::HashStore store;
  store.set("key", std::vector<char>{'v', '1'});
  EXPECT_EQ(store.get("key"), (std::vector<char>{'v', '1'}));
}

TEST(SystemLibrariesTest, PrometheusSerialisesACounter) {
  prometheus::Registry registry;
  auto& family = prometheus::BuildCounter().Name("muppet_test_total").Help("test").Register(registry);
  family.Add({{"job", "j1"}}).Increment(3);
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry.Collect());
  EXPECT_NE(out.str().find("muppet_test_total{job=\"j1\"} 3"), std::string::npos) << out.str();
}

TEST(SystemLibrariesTest, SqliteRunsInWalMode) {
  const std::string path = absl::StrCat(testing::TempDir(), "/system_libraries_test.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t(x);"
                             "INSERT INTO t VALUES (42);", nullptr, nullptr, &error), SQLITE_OK)
      << error;
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST(SystemLibrariesTest, OpensslHashes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  const std::string input = "abc";
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  EXPECT_EQ(digest[0], 0xba);  // SHA-256("abc") = ba7816bf...
  EXPECT_EQ(digest[1], 0x78);
}

}  // namespace
}  // namespace muppet
