// sparsepoold's settings, from command-line flags and an optional config file of the
// same keys. Read in one place and passed down; nothing reads the environment.
//
//   --listen=HOST:PORT        gRPC address (default 127.0.0.1:7070; port 0 picks one)
//   --region=SPEC             repeatable; see transport/cxl/region_spec.h
//   --page_tokens=N           default tokens per page (64)
//   --lease_timeout=DURATION  e.g. 30s, 500ms (30s)
//   --reuse_grace=DURATION    released memory stays untouched this long (1s; 0 turns
//                             it off)
//   --record_slots=N          sequences per region, fixed when a region is formatted
//   --port_file=PATH          write the bound port here once serving
//   --metrics_listen=HOST:PORT  serve Prometheus metrics at /metrics (off by default;
//                             port 0 picks one, logged)
//   --ucx=true|false          publish regions over UCX for RDMA clients (false)
//   --verbs=true|false        serve RDMA READ/WRITE through libibverbs (false)
//   --verbs_device=NAME       the RDMA device (default: the first listed)
//   --verbs_gid_index=N       source GID index on RoCE (0)
//   --tenants=PATH            tenants and operators with their tokens' hashes and
//                             quotas (service/tenants.h); every call then needs a
//                             token, and acts within its tenant
//   --tls_cert=PATH --tls_key=PATH  serve gRPC over TLS with this certificate chain
//                             and key (PEM); with --tenants, required unless the
//                             daemon listens on loopback only
//   --tls_client_ca=PATH      also require client certificates signed by this CA
//   --log_level=LEVEL         info (default), warning or error: the least the log shows
//   --config=PATH             read KEY = VALUE lines first ('#' starts a comment);
//                             flags given on the command line win
#ifndef SPARSEPOOL_SERVICE_DAEMON_CONFIG_H_
#define SPARSEPOOL_SERVICE_DAEMON_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "transport/cxl/region_spec.h"

namespace sparsepool {

struct DaemonConfig {
  std::string listen = "127.0.0.1:7070";
  std::vector<RegionSpec> regions;  // empty after parsing means: the default region
  uint32_t page_tokens = 64;
  absl::Duration lease_timeout = absl::Seconds(30);
  absl::Duration reuse_grace = absl::Seconds(1);
  LogLevel log_level = LogLevel::kInfo;
  uint32_t record_slots = 16384;
  std::string port_file;
  std::string metrics_listen;  // empty: no metrics endpoint
  bool ucx = false;
  bool verbs = false;
  std::string verbs_device;
  uint32_t verbs_gid_index = 0;
  std::string tenants;        // empty: a daemon without tenants (one trusted host)
  std::string tls_cert;       // empty: plaintext gRPC
  std::string tls_key;
  std::string tls_client_ca;  // empty: no client certificates asked for
  // A node of a pool cluster (issue 13; cluster/node_registration.h): registered in etcd
  // under a lease as `node_name`, its sequence ids in the range of `node_id` (1..16383),
  // reached by clients at `advertise` (default: the address it listens on).
  std::string etcd;  // "HOST:PORT[,HOST:PORT...]"; empty: a daemon on its own
  std::string etcd_prefix = "/sparsepool";
  absl::Duration etcd_ttl = absl::Seconds(10);
  std::string node_name;
  uint32_t node_id = 0;
  std::string advertise;
};

// Whether HOST:PORT names a loopback address (127.0.0.0/8, ::1, localhost).
bool IsLoopbackAddress(absl::string_view host_port);

// The region used when none is configured: 1 GiB of shared memory.
inline constexpr char kDefaultRegion[] = "shm:sparsepool0:1GiB";

// Parses argv[1..] (without the program name). `--help` yields a Cancelled status
// whose message is the usage text.
absl::StatusOr<DaemonConfig> ParseDaemonArgs(const std::vector<std::string>& args);

// Applies config-file text on top of `config`. Exposed for tests and fuzzing.
absl::Status ApplyConfigText(absl::string_view text, absl::string_view source,
                             DaemonConfig& config);

std::string DaemonUsage();

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_DAEMON_CONFIG_H_
