// sparsepoold's settings, read in one place (the daemon's flags and config file:
// service/daemon_flags.h) and passed down; nothing reads the environment.
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
  // Creates and growths (which may zero reused pages) run on this many threads of
  // their own, tenants taking turns (service/fair_work_queue.h); 0 runs them on gRPC's
  // threads as they come, with no turns and no bound.
  uint32_t slow_work_threads = 2;
  uint32_t slow_work_queue = 256;  // one tenant's queued creates and growths, at most
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

// Checks every setting and how they go together (ranges, addresses, a node's cluster
// settings, tenants and TLS) and gives a config without regions the default one.
// InvalidArgument naming the setting (`key = "value" is not ...`) when one is wrong.
absl::Status CheckDaemonConfig(DaemonConfig& config);

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_DAEMON_CONFIG_H_
