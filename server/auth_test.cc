#include "server/auth.h"

#include <openssl/sha.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace muppet::server {
namespace {

using ::testing::HasSubstr;

// The tokens-file hash of `token`, computed independently of auth.cc's parser.
std::string HashLine(const std::string& token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  std::string hex = "sha256:";
  for (unsigned char b : digest) absl::StrAppend(&hex, absl::Hex(b, absl::kZeroPad2));
  return hex;
}

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name);
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

TEST(TokenTableTest, FindsEachTokensPrincipalAndRole) {
  const std::string text = absl::StrCat("# muppet tokens\n\n", HashLine("root-token"),
                                        " ops admin\n", HashLine("alice-token"), "\talice user\n",
                                        "  ", HashLine("w1-token"), "  w1.node-3@dc  worker  \n");
  absl::StatusOr<TokenTable> table = TokenTable::Parse(text, "tokens");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 3u);
  const auto alice = table->Find("alice-token");
  ASSERT_TRUE(alice.has_value());
  EXPECT_EQ(alice->name, "alice");
  EXPECT_EQ(alice->role, Role::kUser);
  EXPECT_EQ(table->Find("root-token")->role, Role::kAdmin);
  EXPECT_EQ(table->Find("w1-token")->name, "w1.node-3@dc");
  EXPECT_EQ(table->Find("w1-token")->role, Role::kWorker);
  EXPECT_FALSE(table->Find("alice-token ").has_value());
  EXPECT_FALSE(table->Find("").has_value());
}

TEST(TokenTableTest, UppercaseHexIsTheSameHash) {
  std::string line = HashLine("t");
  for (size_t i = 7; i < line.size(); ++i) line[i] = static_cast<char>(std::toupper(line[i]));
  absl::StatusOr<TokenTable> table = TokenTable::Parse(line + " bob user\n", "tokens");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->Find("t")->name, "bob");
}

TEST(TokenTableTest, EveryBadLineIsRefusedNamingFileLineAndRule) {
  const std::string h = HashLine("x");
  const struct {
    std::string line;
    std::string message;
  } cases[] = {
      {h + " bob", "expected \"sha256:<64 hex digits> <principal> <role>\", got 2 fields"},
      {h + " bob user extra", "got 4 fields"},
      {"md5:abcdef bob user", "the hash must start with \"sha256:\""},
      {"sha256:abcd bob user",
       "64 hex digits after \"sha256:\", got \"sha256:abcd\" (4 characters)"},
      {"sha256:" + std::string(63, 'a') + "g bob user", "64 hex digits"},
      {h + " bob/evil user", "principal: must be 1 to 64 characters from [A-Za-z0-9._@-]"},
      {h + " " + std::string(65, 'b') + " user", "principal: must be 1 to 64"},
      {h + " bob root", "role: must be admin, user or worker, got \"root\""},
      {h + " bob Admin", "role: must be admin, user or worker, got \"Admin\""},
  };
  for (const auto& c : cases) {
    const absl::StatusOr<TokenTable> table =
        TokenTable::Parse(absl::StrCat("# header\n", c.line, "\n"), "/etc/muppet/tokens");
    ASSERT_FALSE(table.ok()) << c.line;
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument) << c.line;
    EXPECT_THAT(table.status().message(), HasSubstr("/etc/muppet/tokens:2: ")) << c.line;
    EXPECT_THAT(table.status().message(), HasSubstr(c.message)) << c.line;
  }
}

TEST(TokenTableTest, AnErrorShowsAHashByItsFirstDigitsOnly) {
  const std::string bad = "sha256:" + std::string(70, 'a');
  const absl::Status s = TokenTable::Parse(bad + " bob user\n", "tokens").status();
  EXPECT_THAT(s.message(), HasSubstr("sha256:aaaaaaaaa..."));
  EXPECT_THAT(s.message(), ::testing::Not(HasSubstr(std::string(30, 'a'))));
}

TEST(TokenTableTest, TheSameTokenTwiceIsRefused) {
  const std::string text = absl::StrCat(HashLine("t"), " bob user\n", HashLine("u"), " eve user\n",
                                        HashLine("t"), " carol admin\n");
  const absl::Status s = TokenTable::Parse(text, "tokens").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("tokens:3: the same token's hash is already on line 1"));
}

TEST(TokenTableTest, AnUnreadableFileIsNamed) {
  const absl::Status s = TokenTable::Read(TempPath("no-such-tokens")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("--tokens-file: cannot read "));
  EXPECT_THAT(s.message(), HasSubstr("no-such-tokens"));
}

TEST(MayCallTest, RolesAgainstServices) {
  EXPECT_TRUE(MayCall(Role::kAdmin, ServiceKind::kJob));
  EXPECT_TRUE(MayCall(Role::kAdmin, ServiceKind::kWorker));
  EXPECT_TRUE(MayCall(Role::kAdmin, ServiceKind::kRendezvous));
  EXPECT_TRUE(MayCall(Role::kUser, ServiceKind::kJob));
  EXPECT_FALSE(MayCall(Role::kUser, ServiceKind::kWorker));
  EXPECT_FALSE(MayCall(Role::kUser, ServiceKind::kRendezvous));
  EXPECT_FALSE(MayCall(Role::kWorker, ServiceKind::kJob));
  EXPECT_TRUE(MayCall(Role::kWorker, ServiceKind::kWorker));
  EXPECT_TRUE(MayCall(Role::kWorker, ServiceKind::kRendezvous));
}

TEST(AuthenticatorTest, WithoutATokensFileEveryCallIsAnAnonymousAdmin) {
  const auto auth = Authenticator::AllowAll();
  EXPECT_FALSE(auth->enabled());
  Denial denial;
  const auto p = auth->Authenticate(std::nullopt, std::nullopt, &denial);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->role, Role::kAdmin);
  EXPECT_EQ(p->name, "");
}

TEST(AuthenticatorTest, MissingMalformedAndUnknownTokensAreUnauthenticated) {
  const std::string path = TempPath("tokens-auth");
  Write(path, HashLine("good") + " alice user\n");
  auto auth = Authenticator::FromFile(path);
  ASSERT_TRUE(auth.ok()) << auth.status();
  Denial denial;
  auto p = (*auth)->Authenticate(std::nullopt, std::nullopt, &denial);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(denial, Denial::kMissingToken);
  p = (*auth)->Authenticate("Basic Z29vZA==", std::nullopt, &denial);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(denial, Denial::kMalformedHeader);
  p = (*auth)->Authenticate("Bearer guess", std::nullopt, &denial);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(denial, Denial::kUnknownToken);
  EXPECT_THAT(p.status().message(), ::testing::Not(HasSubstr("guess")));
  p = (*auth)->Authenticate("Bearer good", std::nullopt, &denial);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->name, "alice");
}

TEST(AuthenticatorTest, AVerifiedCertificateWithoutATokenIsAWorker) {
  const std::string path = TempPath("tokens-cert");
  Write(path, HashLine("good") + " alice user\n");
  auto auth = Authenticator::FromFile(path);
  ASSERT_TRUE(auth.ok()) << auth.status();
  Denial denial;
  auto p = (*auth)->Authenticate(std::nullopt, "worker-1", &denial);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "worker-1");
  EXPECT_EQ(p->role, Role::kWorker);
  p = (*auth)->Authenticate("Bearer good", "worker-1", &denial);  // The token decides.
  EXPECT_EQ(p->name, "alice");
  EXPECT_EQ(p->role, Role::kUser);
  p = (*auth)->Authenticate(std::nullopt, "muppet test worker", &denial);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(p.status().message(), HasSubstr("is no principal name"));
}

TEST(AuthenticatorTest, ReloadSwapsTheTokensAndKeepsThemOnABadFile) {
  const std::string path = TempPath("tokens-reload");
  Write(path, HashLine("old") + " alice user\n");
  auto auth = Authenticator::FromFile(path);
  ASSERT_TRUE(auth.ok()) << auth.status();
  Denial denial;
  Write(path, HashLine("new") + " alice user\n" + HashLine("w") + " w1 worker\n");
  ASSERT_EQ(*(*auth)->Reload(), 2u);
  EXPECT_FALSE((*auth)->Authenticate("Bearer old", std::nullopt, &denial).ok());
  EXPECT_TRUE((*auth)->Authenticate("Bearer new", std::nullopt, &denial).ok());

  Write(path, "garbage\n");
  const auto failed = (*auth)->Reload();
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(failed.status().message(), HasSubstr(path + ":1: "));
  EXPECT_TRUE(
      (*auth)->Authenticate("Bearer new", std::nullopt, &denial).ok());  // The old table stays.
}

TEST(AuthenticatorTest, AMissingFileFailsAtStart) {
  const auto auth = Authenticator::FromFile(TempPath("tokens-missing"));
  EXPECT_EQ(auth.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace muppet::server
