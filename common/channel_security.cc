#include "common/channel_security.h"

#include "absl/strings/str_cat.h"
#include "common/file_text.h"

namespace sparsepool {

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(const ChannelSecurity& security) {
  if (security.tls_cert.empty() != security.tls_key.empty()) {
    return absl::InvalidArgumentError("a client certificate (tls_cert) and its key (tls_key) go together");
  }
  if (security.tls_root_certs.empty()) {
    if (!security.tls_cert.empty()) {
      return absl::InvalidArgumentError("a client certificate needs TLS: give tls_root_certs, the daemon's CA");
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions options;
  auto roots = ReadFileText(security.tls_root_certs, "the daemon's CA certificates");
  if (!roots.ok()) return roots.status();
  options.pem_root_certs = *roots;
  if (!security.tls_cert.empty()) {
    auto cert = ReadFileText(security.tls_cert, "the client certificate chain");
    if (!cert.ok()) return cert.status();
    auto key = ReadFileText(security.tls_key, "the client certificate's key");
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *cert;
    options.pem_private_key = *key;
  }
  return grpc::SslCredentials(options);
}

}  // namespace sparsepool
