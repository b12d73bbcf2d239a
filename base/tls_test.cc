#include "base/tls.h"

#include <chrono>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace muppet {
namespace {

using ::testing::HasSubstr;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(std::getenv("TEST_TMPDIR"), "/certs"));
    const std::string command =
        absl::StrCat("bash base/make_test_certs.sh ", *dir_, " > /dev/null");
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  static std::string Path(const std::string& name) { return absl::StrCat(*dir_, "/", name); }

  // Whether a channel with `tls` completes a handshake with a server serving `server`.
  static bool Connects(const ServerTls& server, const ClientTls& tls) {
    auto credentials = ServerCredentials(server);
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", *credentials, &port);
    std::unique_ptr<grpc::Server> s = builder.BuildAndStart();
    EXPECT_NE(port, 0);
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), ChannelCredentials(tls));
    const bool connected =
        channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(3));
    s->Shutdown();
    return connected;
  }

  static std::string* dir_;
};

std::string* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, LoadsACaAndAClientCertificateWithItsKey) {
  ClientTls tls{.enabled = true,
                .ca_file = Path("ca.pem"),
                .cert_file = Path("client.pem"),
                .key_file = Path("client.key")};
  ASSERT_TRUE(LoadClientTls(tls).ok());
  EXPECT_THAT(tls.ca_pem, HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_THAT(tls.cert_pem, HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_THAT(tls.key_pem, HasSubstr("PRIVATE KEY"));
}

TEST_F(TlsTest, EveryWrongFileIsNamedWithItsFlag) {
  const struct {
    ClientTls tls;
    absl::StatusCode code;
    std::string message;
  } cases[] = {
      {{.enabled = true, .ca_file = Path("missing.pem")},
       absl::StatusCode::kFailedPrecondition,
       "--tls-ca: cannot read " + Path("missing.pem")},
      {{.enabled = true, .ca_file = Path("ca.key")},
       absl::StatusCode::kInvalidArgument,
       "--tls-ca: " + Path("ca.key") + " holds no PEM certificate"},
      {{.enabled = true, .cert_file = Path("client.pem")},
       absl::StatusCode::kInvalidArgument,
       "--tls-key: required with --tls-cert"},
      {{.enabled = true, .key_file = Path("client.key")},
       absl::StatusCode::kInvalidArgument,
       "--tls-cert: required with --tls-key"},
      {{.enabled = true, .cert_file = Path("client.pem"), .key_file = Path("client.pem")},
       absl::StatusCode::kInvalidArgument,
       "--tls-key: " + Path("client.pem") + " holds no unencrypted PEM private key"},
      {{.enabled = true, .cert_file = Path("client.pem"), .key_file = Path("server.key")},
       absl::StatusCode::kInvalidArgument,
       "--tls-key: " + Path("server.key") + " is not the key of the certificate in " +
           Path("client.pem")},
  };
  for (auto c : cases) {
    const absl::Status s = LoadClientTls(c.tls);
    EXPECT_EQ(s.code(), c.code) << c.message;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
  }
}

TEST_F(TlsTest, ServerFlagsThatDoNotFitTogetherAreRefused) {
  EXPECT_TRUE(ServerCredentials({}).ok());  // Plaintext.
  EXPECT_THAT(ServerCredentials({.client_ca_file = Path("ca.pem")}).status().message(),
              HasSubstr("--tls-client-ca: needs TLS (--tls-cert and --tls-key)"));
  EXPECT_THAT(ServerCredentials({.cert_file = Path("server.pem"),
                                 .key_file = Path("server.key"),
                                 .require_client_cert = true})
                  .status()
                  .message(),
              HasSubstr("--require-client-cert: needs --tls-client-ca"));
  EXPECT_THAT(ServerCredentials({.cert_file = Path("server.pem"), .key_file = Path("client.key")})
                  .status()
                  .message(),
              HasSubstr("is not the key of the certificate in"));
}

TEST_F(TlsTest, HandshakesSucceedOnlyWithTheRightCaAndCertificates) {
  const ServerTls server{.cert_file = Path("server.pem"), .key_file = Path("server.key")};
  ClientTls good{.enabled = true, .ca_file = Path("ca.pem")};
  ASSERT_TRUE(LoadClientTls(good).ok());
  EXPECT_TRUE(Connects(server, good));
  ClientTls wrong{.enabled = true, .ca_file = Path("other-ca.pem")};
  ASSERT_TRUE(LoadClientTls(wrong).ok());
  EXPECT_FALSE(Connects(server, wrong));
  EXPECT_FALSE(Connects(server, ClientTls{}));  // Plaintext against TLS.
  EXPECT_FALSE(Connects(ServerTls{}, good));    // TLS against plaintext.

  ServerTls mutual = server;
  mutual.client_ca_file = Path("ca.pem");
  mutual.require_client_cert = true;
  EXPECT_FALSE(Connects(mutual, good));  // No client certificate.
  ClientTls with_cert = good;
  with_cert.cert_file = Path("client.pem");
  with_cert.key_file = Path("client.key");
  ASSERT_TRUE(LoadClientTls(with_cert).ok());
  EXPECT_TRUE(Connects(mutual, with_cert));
}

}  // namespace
}  // namespace muppet
