// How a client of the daemon (the client library, sparsepoolctl) secures its channel:
// plaintext, or TLS trusting the CA that signed the daemon's certificate, with a client
// certificate for daemons that ask for one. (The token each call carries to a daemon
// that serves tenants is added per call: AddToken in common/grpc_status.h.)
#ifndef SPARSEPOOL_COMMON_CHANNEL_SECURITY_H_
#define SPARSEPOOL_COMMON_CHANNEL_SECURITY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/security/credentials.h"

namespace sparsepool {

struct ChannelSecurity {
  std::string tls_root_certs;  // PEM file of the daemon's CA; empty: plaintext
  std::string tls_cert;        // PEM files of a client certificate chain and its key
  std::string tls_key;
};

// The channel credentials; NotFound naming a PEM file that cannot be read,
// InvalidArgument for a certificate without its key.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(const ChannelSecurity& security);

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_CHANNEL_SECURITY_H_
