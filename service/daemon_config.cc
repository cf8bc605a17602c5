#include "service/daemon_config.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/node_ids.h"
#include "service/pool.h"

namespace sparsepool {
namespace {

// `key = "value" is not ...`: the form every refusal takes, naming the setting as the
// config file and the flag (--key) both spell it.
absl::Status Refused(absl::string_view key, const std::string& value, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(key, " = \"", value, "\" is not ", what));
}

absl::Status CheckRange(absl::string_view key, uint32_t value, uint32_t min, uint32_t max) {
  if (value >= min && value <= max) return absl::OkStatus();
  return Refused(key, absl::StrCat(value), absl::StrCat("a whole number in [", min, ", ", max, "]"));
}

absl::Status CheckDuration(absl::string_view key, absl::Duration value, absl::Duration min, absl::Duration max,
                           absl::string_view what) {
  if (value >= min && value <= max) return absl::OkStatus();
  return Refused(key, absl::FormatDuration(value), what);
}

// An address to listen on or advertise: HOST:PORT (the port may be 0). Empty passes:
// the setting is off (or, for listen, refused before).
absl::Status CheckHostPort(absl::string_view key, const std::string& value) {
  if (value.empty() || value.find(':') != std::string::npos) return absl::OkStatus();
  return Refused(key, value, "HOST:PORT");
}

absl::Status CheckSettings(const DaemonConfig& c) {
  if (c.listen.empty()) return Refused("listen", c.listen, "HOST:PORT");
  for (const auto& [key, value] : {std::pair{"listen", &c.listen}, std::pair{"metrics_listen", &c.metrics_listen},
                                   std::pair{"advertise", &c.advertise}}) {
    if (absl::Status s = CheckHostPort(key, *value); !s.ok()) return s;
  }
  for (absl::Status s : {CheckRange("page_tokens", c.page_tokens, 1, kMaxPageTokens),
                         CheckRange("record_slots", c.record_slots, 1, 1 << 24),
                         CheckRange("verbs_gid_index", c.verbs_gid_index, 0, 255),
                         CheckRange("slow_work_threads", c.slow_work_threads, 0, 64),
                         CheckRange("slow_work_queue", c.slow_work_queue, 1, 1 << 16),
                         CheckDuration("lease_timeout", c.lease_timeout, absl::Nanoseconds(1), absl::InfiniteDuration(),
                                       "a positive duration like 30s"),
                         // Bounded: a request that needs reclaimable memory may wait this long for it.
                         CheckDuration("reuse_grace", c.reuse_grace, absl::ZeroDuration(), absl::Minutes(1),
                                       "a duration from 0s to 1m like 1s"),
                         CheckDuration("etcd_ttl", c.etcd_ttl, absl::Seconds(1), absl::Minutes(10),
                                       "a duration from 1s to 10m like 10s")}) {
    if (!s.ok()) return s;
  }
  if (c.node_id != 0) {
    if (absl::Status s = CheckRange("node_id", c.node_id, 1, kMaxNodeId); !s.ok()) return s;
  }
  // It becomes an etcd key: keep it to what reads well there.
  if (!c.node_name.empty() &&
      (c.node_name.size() > 63 || !std::all_of(c.node_name.begin(), c.node_name.end(), [](char ch) {
        return absl::ascii_isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
      }))) {
    return Refused("node_name", c.node_name, "1-63 letters, digits, '-', '_' or '.'");
  }
  if (c.etcd_prefix.empty() || c.etcd_prefix[0] != '/') {
    return Refused("etcd_prefix", c.etcd_prefix, "a key prefix starting with /");
  }
  return absl::OkStatus();
}

}  // namespace

bool IsLoopbackAddress(absl::string_view host_port) {
  const size_t colon = host_port.rfind(':');
  absl::string_view host = colon == absl::string_view::npos ? host_port : host_port.substr(0, colon);
  if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

absl::Status CheckDaemonConfig(DaemonConfig& config) {
  if (absl::Status s = CheckSettings(config); !s.ok()) return s;
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together: the certificate chain and its key");
  }
  if (!config.tls_client_ca.empty() && config.tls_cert.empty()) {
    return absl::InvalidArgumentError("--tls_client_ca needs TLS: give --tls_cert and --tls_key too");
  }
  if (!config.tenants.empty() && config.tls_cert.empty() && !IsLoopbackAddress(config.listen)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tenants without TLS would send tokens in plaintext across the network: give --tls_cert and "
        "--tls_key, or listen on loopback only (--listen=", config.listen, " is not)"));
  }
  for (const RegionSpec& region : config.regions) {
    if (!region.tenants.empty() && config.tenants.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "region ", region.path, " is dedicated to tenant ", region.tenants[0],
          " but the daemon has no --tenants: without them no caller is that tenant"));
    }
  }
  if (!config.etcd.empty() && (config.node_name.empty() || config.node_id == 0)) {
    return absl::InvalidArgumentError("--etcd makes the daemon a node of a cluster: give it --node_name and --node_id");
  }
  if (config.etcd.empty() && (!config.node_name.empty() || config.node_id != 0)) {
    return absl::InvalidArgumentError("--node_name and --node_id name a node of a cluster: give --etcd too");
  }
  if (config.regions.empty()) {
    auto spec = ParseRegionSpec(kDefaultRegion);
    if (!spec.ok()) return spec.status();
    config.regions.push_back(*spec);
  }
  return absl::OkStatus();
}

}  // namespace sparsepool
