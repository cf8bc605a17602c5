#include "service/daemon_config.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_text.h"
#include "common/key_value_text.h"
#include "common/node_ids.h"
#include "service/pool.h"

namespace sparsepool {
namespace {

absl::Status ParseUint32(absl::string_view key, absl::string_view value, uint32_t min,
                         uint32_t max, uint32_t& out) {
  uint32_t parsed = 0;
  if (!absl::SimpleAtoi(value, &parsed) || parsed < min || parsed > max) {
    return absl::InvalidArgumentError(absl::StrCat(key, " = \"", value,
                                                   "\" is not a whole number in [", min, ", ",
                                                   max, "]"));
  }
  out = parsed;
  return absl::OkStatus();
}

// An address to listen on: HOST:PORT (the port may be 0).
absl::Status ParseHostPort(absl::string_view key, absl::string_view value, std::string& out) {
  if (value.empty() || value.find(':') == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(key, " = \"", value, "\" is not HOST:PORT"));
  }
  out = std::string(value);
  return absl::OkStatus();
}

// One setting. `regions_replaced` starts false for each source (file, command line):
// the first region a source names replaces those of the sources before it.
absl::Status Apply(absl::string_view key, absl::string_view value, bool& regions_replaced,
                   DaemonConfig& config) {
  if (key == "listen") return ParseHostPort(key, value, config.listen);
  if (key == "region") {
    auto spec = ParseRegionSpec(value);
    if (!spec.ok()) return spec.status();
    if (!regions_replaced) config.regions.clear();
    regions_replaced = true;
    config.regions.push_back(*spec);
    return absl::OkStatus();
  }
  if (key == "page_tokens") return ParseUint32(key, value, 1, kMaxPageTokens, config.page_tokens);
  if (key == "record_slots") return ParseUint32(key, value, 1, 1 << 24, config.record_slots);
  if (key == "lease_timeout") {
    absl::Duration d;
    if (!absl::ParseDuration(value, &d) || d <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("lease_timeout = \"", value, "\" is not a positive duration like 30s"));
    }
    config.lease_timeout = d;
    return absl::OkStatus();
  }
  if (key == "reuse_grace") {
    // Bounded: a request that needs reclaimable memory may wait this long for it.
    absl::Duration d;
    if (!absl::ParseDuration(value, &d) || d < absl::ZeroDuration() || d > absl::Minutes(1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "reuse_grace = \"", value, "\" is not a duration from 0s to 1m like 1s"));
    }
    config.reuse_grace = d;
    return absl::OkStatus();
  }
  if (key == "log_level") {
    absl::StatusOr<LogLevel> level = ParseLogLevel(value);
    if (!level.ok()) return level.status();
    config.log_level = *level;
    return absl::OkStatus();
  }
  if (key == "ucx" || key == "verbs") {
    if (value != "true" && value != "false") {
      return absl::InvalidArgumentError(absl::StrCat(key, " = \"", value, "\" is not true or false"));
    }
    (key == "ucx" ? config.ucx : config.verbs) = value == "true";
    return absl::OkStatus();
  }
  if (key == "verbs_device") {
    config.verbs_device = std::string(value);
    return absl::OkStatus();
  }
  if (key == "verbs_gid_index") return ParseUint32(key, value, 0, 255, config.verbs_gid_index);
  if (key == "metrics_listen") return ParseHostPort(key, value, config.metrics_listen);
  if (key == "advertise") return ParseHostPort(key, value, config.advertise);
  if (key == "node_id") return ParseUint32(key, value, 1, kMaxNodeId, config.node_id);
  if (key == "etcd_ttl") {
    absl::Duration d;
    if (!absl::ParseDuration(value, &d) || d < absl::Seconds(1) || d > absl::Minutes(10)) {
      return absl::InvalidArgumentError(
          absl::StrCat("etcd_ttl = \"", value, "\" is not a duration from 1s to 10m like 10s"));
    }
    config.etcd_ttl = d;
    return absl::OkStatus();
  }
  if (key == "node_name") {
    // It becomes an etcd key: keep it to what reads well there.
    if (value.empty() || value.size() > 63 ||
        !std::all_of(value.begin(), value.end(), [](char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.'; })) {
      return absl::InvalidArgumentError(
          absl::StrCat("node_name = \"", value, "\" is not 1-63 letters, digits, '-', '_' or '.'"));
    }
    config.node_name = std::string(value);
    return absl::OkStatus();
  }
  if (key == "etcd" || key == "etcd_prefix") {
    if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(key, " is empty"));
    if (key == "etcd_prefix" && value[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat("etcd_prefix = \"", value, "\" does not start with /"));
    }
    (key == "etcd" ? config.etcd : config.etcd_prefix) = std::string(value);
    return absl::OkStatus();
  }
  for (auto [name, field] : {std::pair{"port_file", &config.port_file}, std::pair{"tenants", &config.tenants},
                              std::pair{"tls_cert", &config.tls_cert}, std::pair{"tls_key", &config.tls_key},
                              std::pair{"tls_client_ca", &config.tls_client_ca}}) {
    if (key != name) continue;
    if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(key, " needs a path"));
    *field = std::string(value);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown setting \"", key, "\""));
}

}  // namespace

bool IsLoopbackAddress(absl::string_view host_port) {
  const size_t colon = host_port.rfind(':');
  absl::string_view host = colon == absl::string_view::npos ? host_port : host_port.substr(0, colon);
  if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

std::string DaemonUsage() {
  return "usage: sparsepoold [--config=FILE] [--listen=HOST:PORT] [--region=SPEC]...\n"
         "                   [--page_tokens=N] [--lease_timeout=30s] [--reuse_grace=1s]\n"
         "                   [--record_slots=N] [--log_level=info|warning|error]\n"
         "                   [--port_file=PATH] [--metrics_listen=HOST:PORT]\n"
         "                   [--ucx=true] [--verbs=true]\n"
         "                   [--verbs_device=NAME] [--verbs_gid_index=N]\n"
         "                   [--tenants=PATH] [--tls_cert=PATH --tls_key=PATH [--tls_client_ca=PATH]]\n"
         "                   [--etcd=HOST:PORT[,...] --node_name=NAME --node_id=N [--advertise=HOST:PORT]\n"
         "                    [--etcd_prefix=/sparsepool] [--etcd_ttl=10s]]   (a node of a pool cluster)\n"
         "region SPEC: shm:NAME:SIZE | hugetlbfs:/PATH:SIZE | devdax:/dev/daxX.Y[:SIZE] |\n"
         "             numa:NODE:NAME:SIZE        (default: " +
         std::string(kDefaultRegion) + ")\n" +
         "             then options ,tenant=NAME (repeatable) ,owner=USER ,group=GROUP ,mode=0600\n";
}

absl::Status ApplyConfigText(absl::string_view text, absl::string_view source,
                             DaemonConfig& config) {
  bool regions_replaced = false;
  return ForEachKeyValueLine(text, source, [&](absl::string_view key, absl::string_view value) {
    return Apply(key, value, regions_replaced, config);
  });
}

absl::StatusOr<DaemonConfig> ParseDaemonArgs(const std::vector<std::string>& args) {
  DaemonConfig config;
  std::vector<std::pair<std::string, std::string>> flags;
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") return absl::CancelledError(DaemonUsage());
    if (!absl::StartsWith(arg, "--") || arg.find('=') == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("argument \"", arg, "\" is not --KEY=VALUE\n", DaemonUsage()));
    }
    const size_t eq = arg.find('=');
    flags.emplace_back(arg.substr(2, eq - 2), arg.substr(eq + 1));
  }
  for (const auto& [key, value] : flags) {
    if (key != "config") continue;
    auto text = ReadFileText(value, "config file");
    if (!text.ok()) return text.status();
    absl::Status applied = ApplyConfigText(*text, value, config);
    if (!applied.ok()) return applied;
  }
  bool regions_replaced = false;
  for (const auto& [key, value] : flags) {
    if (key == "config") continue;
    absl::Status applied = Apply(key, value, regions_replaced, config);
    if (!applied.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--", key, ": ", applied.message()));
    }
  }
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
  return config;
}

}  // namespace sparsepool
