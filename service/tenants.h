// Who may call the daemon: its tenants, each with a token and quotas, and operators,
// from a file the operator writes (sparsepoold --tenants=PATH). The file holds the
// SHA-256 of each token, never the token, so reading it does not let anyone in:
//
//   # kind    name      token                      quotas (optional; 0 or absent: none)
//   tenant    acme      token_sha256=9f86d08...    max_bytes=64GiB max_sequences=100000 max_clients=512
//   tenant    globex    token_sha256=60303ae...
//   operator  ops       token_sha256=fd61a03...
//
// `sparsepoolctl hash-token` prints the line's hash for a token. A tenant's calls act
// only on its own sequences; an operator's may list and inspect every tenant's (for
// sparsepoolctl) but create nothing.
#ifndef SPARSEPOOL_SERVICE_TENANTS_H_
#define SPARSEPOOL_SERVICE_TENANTS_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sparsepool {

using TokenHash = std::array<uint8_t, 32>;

// SHA-256 (OpenSSL's), and its lowercase hex as the tenants file writes it.
TokenHash HashToken(absl::string_view token);
std::string TokenHashHex(absl::string_view token);

struct Tenant {
  std::string name;
  bool is_operator = false;
  TokenHash token_sha256{};
  uint64_t max_bytes = 0;      // 0: no quota
  uint64_t max_sequences = 0;  // 0: no quota
  uint64_t max_clients = 0;    // client leases at once; 0: half the daemon's lease table
};

class TenantDirectory {
 public:
  // InvalidArgument naming the source, line and what is wrong: an unknown kind or key,
  // a bad hash or size, a name reused, or two entries with one token.
  static absl::StatusOr<TenantDirectory> Parse(absl::string_view text, absl::string_view source);
  static absl::StatusOr<TenantDirectory> Load(const std::string& path);

  // The entry whose token this is. Unauthenticated otherwise, without saying how close
  // the token came; every entry is compared in constant time.
  absl::StatusOr<const Tenant*> Authenticate(absl::string_view token) const;
  // A tenant (not an operator) by name; null when there is none.
  const Tenant* FindTenant(absl::string_view name) const;

  const std::vector<Tenant>& entries() const { return entries_; }

 private:
  std::vector<Tenant> entries_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_TENANTS_H_
