#include "base/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace muppet {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Certificate = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

absl::StatusOr<std::string> ReadFile(const char* flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) return absl::FailedPreconditionError(absl::StrCat(flag, ": cannot read ", path));
  return text.str();
}

Bio MemoryBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// The first certificate of a PEM file that must hold at least one.
absl::StatusOr<Certificate> FirstCertificate(const char* flag, const std::string& path,
                                             const std::string& pem) {
  Bio bio = MemoryBio(pem);
  Certificate first(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (first == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " holds no PEM certificate (\"BEGIN CERTIFICATE\")"));
  }
  return first;
}

absl::StatusOr<Key> PrivateKey(const char* flag, const std::string& path, const std::string& pem) {
  Bio bio = MemoryBio(pem);
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": ", path, " holds no unencrypted PEM private key (\"BEGIN PRIVATE KEY\")"));
  }
  return key;
}

// Reads a certificate and its key; checks that the key is the certificate's.
absl::Status LoadPair(const char* cert_flag, const std::string& cert_file, const char* key_flag,
                      const std::string& key_file, std::string& cert_pem, std::string& key_pem) {
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(cert_file.empty() ? cert_flag : key_flag,
                                                   ": required with ",
                                                   cert_file.empty() ? key_flag : cert_flag));
  }
  if (cert_file.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> cert = ReadFile(cert_flag, cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile(key_flag, key_file);
  if (!key.ok()) return key.status();
  absl::StatusOr<Certificate> x509 = FirstCertificate(cert_flag, cert_file, *cert);
  if (!x509.ok()) return x509.status();
  absl::StatusOr<Key> pkey = PrivateKey(key_flag, key_file, *key);
  if (!pkey.ok()) return pkey.status();
  const bool matches = X509_check_private_key(x509->get(), pkey->get()) == 1;
  ERR_clear_error();
  if (!matches) {
    return absl::InvalidArgumentError(absl::StrCat(
        key_flag, ": ", key_file, " is not the key of the certificate in ", cert_file));
  }
  cert_pem = *std::move(cert);
  key_pem = *std::move(key);
  return absl::OkStatus();
}

absl::StatusOr<std::string> LoadCa(const char* flag, const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFile(flag, path);
  if (!pem.ok()) return pem.status();
  if (absl::StatusOr<Certificate> first = FirstCertificate(flag, path, *pem); !first.ok()) {
    return first.status();
  }
  return pem;
}

}  // namespace

absl::Status LoadClientTls(ClientTls& tls) {
  if (!tls.enabled) return absl::OkStatus();
  if (!tls.ca_file.empty()) {
    absl::StatusOr<std::string> ca = LoadCa("--tls-ca", tls.ca_file);
    if (!ca.ok()) return ca.status();
    tls.ca_pem = *std::move(ca);
  }
  return LoadPair("--tls-cert", tls.cert_file, "--tls-key", tls.key_file, tls.cert_pem,
                  tls.key_pem);
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const ClientTls& tls) {
  if (!tls.enabled) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = tls.ca_pem;
  options.pem_private_key = tls.key_pem;
  options.pem_cert_chain = tls.cert_pem;
  return grpc::SslCredentials(options);
}

std::vector<std::string> ClientTlsFlags(const ClientTls& tls) {
  if (!tls.enabled) return {"--insecure"};
  std::vector<std::string> flags;
  if (!tls.ca_file.empty()) flags.push_back(absl::StrCat("--tls-ca=", tls.ca_file));
  if (!tls.cert_file.empty()) {
    flags.push_back(absl::StrCat("--tls-cert=", tls.cert_file));
    flags.push_back(absl::StrCat("--tls-key=", tls.key_file));
  }
  return flags;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const ServerTls& tls) {
  if (tls.cert_file.empty() && tls.key_file.empty()) {
    if (!tls.client_ca_file.empty() || tls.require_client_cert) {
      return absl::InvalidArgumentError(
          absl::StrCat(tls.require_client_cert ? "--require-client-cert" : "--tls-client-ca",
                       ": needs TLS (--tls-cert and --tls-key)"));
    }
    return grpc::InsecureServerCredentials();
  }
  if (tls.require_client_cert && tls.client_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "--require-client-cert: needs --tls-client-ca, the CA client certificates chain to");
  }
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  if (absl::Status s = LoadPair("--tls-cert", tls.cert_file, "--tls-key", tls.key_file,
                                pair.cert_chain, pair.private_key);
      !s.ok()) {
    return s;
  }
  grpc::SslServerCredentialsOptions options(
      tls.client_ca_file.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : (tls.require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                     : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY));
  if (!tls.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = LoadCa("--tls-client-ca", tls.client_ca_file);
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *std::move(ca);
  }
  options.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(options);
}

}  // namespace muppet
