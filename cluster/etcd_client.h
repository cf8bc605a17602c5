// A small client of etcd's v3 API (gRPC, C++ generated from etcd's own .proto files:
// third_party/etcd), with what the pool cluster needs: leases, puts under a lease,
// create-if-absent and compare-and-delete transactions, prefix reads, deletes.
//
// Every call has a deadline (`timeout`) and returns Unavailable naming the endpoints
// when etcd cannot be reached, so that callers can say plainly that etcd is down.
// Thread-safe.
#ifndef SPARSEPOOL_CLUSTER_ETCD_CLIENT_H_
#define SPARSEPOOL_CLUSTER_ETCD_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sparsepool::cluster {

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t lease = 0;            // 0: none
  int64_t mod_revision = 0;
};

class EtcdClient {
 public:
  // `endpoints`: "HOST:PORT[,HOST:PORT...]" (plaintext gRPC, as etcd's
  // --listen-client-urls http://...). Checks that etcd answers within `timeout`.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Connect(const std::string& endpoints, absl::Duration timeout);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  const std::string& endpoints() const;

  // A lease of `ttl` (whole seconds, at least 1); keys put under it vanish when it
  // expires unrenewed or is revoked.
  absl::StatusOr<int64_t> GrantLease(absl::Duration ttl);
  // Renews the lease; NotFound when it has already expired.
  absl::Status KeepAlive(int64_t lease);
  absl::Status RevokeLease(int64_t lease);

  absl::Status Put(const std::string& key, const std::string& value, int64_t lease = 0);
  // Puts `value` only if `key` does not exist; otherwise returns what is there (and
  // puts nothing).
  absl::StatusOr<std::optional<EtcdKeyValue>> PutIfAbsent(const std::string& key, const std::string& value,
                                                          int64_t lease);
  // Deletes `key` only while it is still held by `lease`; false when it was not.
  absl::StatusOr<bool> DeleteIfLease(const std::string& key, int64_t lease);
  absl::StatusOr<std::optional<EtcdKeyValue>> Get(const std::string& key);
  absl::StatusOr<std::vector<EtcdKeyValue>> GetPrefix(const std::string& prefix);
  absl::Status Delete(const std::string& key);

 private:
  struct Stubs;  // the generated stubs and the channel, in etcd_client.cc
  EtcdClient(std::string endpoints, absl::Duration timeout, std::unique_ptr<Stubs> stubs);

  const std::string endpoints_;
  const absl::Duration timeout_;
  std::unique_ptr<Stubs> stubs_;
};

}  // namespace sparsepool::cluster

#endif  // SPARSEPOOL_CLUSTER_ETCD_CLIENT_H_
