#include "service/daemon_flags.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/command_line.h"
#include "common/file_text.h"
#include "common/key_value_text.h"
#include "common/log.h"
#include "transport/cxl/region_spec.h"

namespace sparsepool {

// --region's value: one region spec, or several separated by ';'. Each is checked as
// it is parsed, so a bad one is refused naming the flag (or the config file's line).
struct RegionList {
  std::vector<std::string> specs;
};

bool AbslParseFlag(absl::string_view text, RegionList* out, std::string* error) {
  RegionList parsed;
  if (!text.empty()) {
    for (absl::string_view spec : absl::StrSplit(text, ';')) {
      if (absl::StatusOr<RegionSpec> region = ParseRegionSpec(spec); !region.ok()) {
        *error = std::string(region.status().message());
        return false;
      }
      parsed.specs.emplace_back(spec);
    }
  }
  *out = std::move(parsed);
  return true;
}

std::string AbslUnparseFlag(const RegionList& list) { return absl::StrJoin(list.specs, ";"); }

}  // namespace sparsepool

// Defaults are DaemonConfig's (daemon_config.h); the range checks are CheckDaemonConfig's.
ABSL_FLAG(std::string, config, "",
          "read KEY = VALUE lines first (the keys are these flags' names; '#' starts a comment); flags given on the "
          "command line win. Give it on the command line, not in a --flagfile");
ABSL_FLAG(std::string, listen, "127.0.0.1:7070", "gRPC address HOST:PORT (port 0 picks one)");
ABSL_FLAG(sparsepool::RegionList, region, {},
          "pool memory: SPEC[;SPEC...], repeatable on the command line (in a --flagfile, one --region with "
          "every SPEC; default shm:sparsepool0:1GiB). SPEC: shm:NAME:SIZE | "
          "hugetlbfs:/PATH:SIZE | devdax:/dev/daxX.Y[:SIZE] | numa:NODE:NAME:SIZE, then options ,tenant=NAME "
          "(repeatable) ,owner=USER ,group=GROUP ,mode=0600");
ABSL_FLAG(uint32_t, page_tokens, 64, "default tokens per page");
ABSL_FLAG(absl::Duration, lease_timeout, absl::Seconds(30),
          "a client that renews nothing for this long loses its lease and its sequences become reclaimable");
ABSL_FLAG(absl::Duration, reuse_grace, absl::Seconds(1),
          "released memory stays untouched this long (0 to 1m; 0 turns it off)");
ABSL_FLAG(uint32_t, record_slots, 16384, "sequences per region, fixed when a region is formatted");
ABSL_FLAG(uint32_t, slow_work_threads, 2,
          "threads for creates and growths (they may zero reused pages), tenants taking turns; 0 runs them on gRPC's "
          "threads as they come (no turns, no bound)");
ABSL_FLAG(uint32_t, slow_work_queue, 256,
          "a tenant's (without tenants: a client's) queued creates, and apart its queued growths, at most; more are refused at once "
          "(ResourceExhausted)");
ABSL_FLAG(std::string, port_file, "", "write the bound gRPC port here once serving");
ABSL_FLAG(std::string, metrics_listen, "",
          "serve Prometheus metrics at http://HOST:PORT/metrics (off when empty; port 0 picks one, logged)");
ABSL_FLAG(bool, ucx, false, "publish regions over UCX for RDMA clients");
ABSL_FLAG(bool, verbs, false, "serve RDMA READ/WRITE through libibverbs");
ABSL_FLAG(std::string, verbs_device, "", "the RDMA device (empty: the first listed)");
ABSL_FLAG(uint32_t, verbs_gid_index, 0, "source GID index on RoCE (0-255)");
ABSL_FLAG(std::string, tenants, "",
          "tenants and operators with their tokens' hashes and quotas (service/tenants.h); every call then needs a "
          "token and acts within its tenant");
ABSL_FLAG(std::string, tls_cert, "",
          "serve gRPC over TLS with this PEM certificate chain (with --tls_key); with --tenants, required unless the "
          "daemon listens on loopback only");
ABSL_FLAG(std::string, tls_key, "", "the PEM key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "", "also require client certificates signed by this PEM CA");
ABSL_FLAG(std::string, log_level, "info", "the least the log shows: info, warning or error");
ABSL_FLAG(std::string, etcd, "",
          "HOST:PORT[,...]: make the daemon a node of a pool cluster registered in this etcd (with --node_name "
          "and --node_id)");
ABSL_FLAG(std::string, etcd_prefix, "/sparsepool", "the cluster's key prefix in etcd");
ABSL_FLAG(absl::Duration, etcd_ttl, absl::Seconds(10), "the node's etcd lease (1s to 10m)");
ABSL_FLAG(std::string, node_name, "", "this node's name in the cluster: 1-63 letters, digits, '-', '_' or '.'");
ABSL_FLAG(uint32_t, node_id, 0, "this node's number in the cluster, 1-16383 (its sequence ids carry it)");
ABSL_FLAG(std::string, advertise, "",
          "HOST:PORT clients of the cluster reach this node at (default: the address it listens on)");

namespace sparsepool {
namespace {

constexpr char kUsage[] =
    "the sparsepool memory-pool daemon: holds latent KV caches in CXL-attached or host memory and serves "
    "them to decode workers\n\n"
    "usage: sparsepoold [--config=FILE] [--flag=value...]";

// The daemon's own flag called `name` (not one of Abseil's, which a config file has no
// business setting); null when there is none.
absl::CommandLineFlag* DaemonFlag(absl::string_view name) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  if (flag == nullptr || !absl::EndsWith(flag->Filename(), "service/daemon_flags.cc")) return nullptr;
  return flag;
}

// A setting given with nothing after its '=': refused rather than read as "off", since an
// empty substitution in a template (tenants, TLS files) would otherwise start a daemon
// without them. Leaving the setting out gives its default.
absl::Status EmptyValue(absl::string_view key) {
  return absl::InvalidArgumentError(
      absl::StrCat(key, " is given with an empty value: give one, or leave the setting out for its default"));
}

// The value of `--name=VALUE` or `--name VALUE` at args[i] (one dash or two, as Abseil
// takes them); advances i past a separate value. nullopt when args[i] is another flag.
std::optional<std::string> FlagValue(const std::vector<std::string>& args, size_t& i, absl::string_view name) {
  absl::string_view arg = args[i];
  if (!absl::ConsumePrefix(&arg, "--")) absl::ConsumePrefix(&arg, "-");
  if (!absl::ConsumePrefix(&arg, name)) return std::nullopt;
  if (absl::ConsumePrefix(&arg, "=")) return std::string(arg);
  if (!arg.empty() || i + 1 >= args.size()) return std::nullopt;
  return args[++i];
}

}  // namespace

absl::Status ApplyConfigText(absl::string_view text, absl::string_view source) {
  std::vector<std::string> regions;
  absl::Status applied = ForEachKeyValueLine(text, source, [&](absl::string_view key, absl::string_view value) {
    if (key == "region") {
      if (value.empty()) return EmptyValue(key);
      RegionList one;
      std::string error;
      if (!AbslParseFlag(value, &one, &error)) return absl::InvalidArgumentError(error);
      regions.insert(regions.end(), one.specs.begin(), one.specs.end());
      return absl::OkStatus();
    }
    absl::CommandLineFlag* flag = key == "config" ? nullptr : DaemonFlag(key);
    if (flag == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown setting \"", Quoted(key), "\""));
    if (value.empty()) return EmptyValue(key);
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat(key, " = \"", Quoted(value), "\": ", error));
    }
    return absl::OkStatus();
  });
  if (!applied.ok()) return applied;
  if (!regions.empty()) absl::SetFlag(&FLAGS_region, RegionList{std::move(regions)});
  return absl::OkStatus();
}

absl::StatusOr<DaemonConfig> DaemonConfigFromFlags() {
  DaemonConfig config;
  config.listen = absl::GetFlag(FLAGS_listen);
  for (const std::string& spec : absl::GetFlag(FLAGS_region).specs) {
    absl::StatusOr<RegionSpec> region = ParseRegionSpec(spec);
    if (!region.ok()) return region.status();
    config.regions.push_back(*std::move(region));
  }
  config.page_tokens = absl::GetFlag(FLAGS_page_tokens);
  config.lease_timeout = absl::GetFlag(FLAGS_lease_timeout);
  config.reuse_grace = absl::GetFlag(FLAGS_reuse_grace);
  config.record_slots = absl::GetFlag(FLAGS_record_slots);
  config.slow_work_threads = absl::GetFlag(FLAGS_slow_work_threads);
  config.slow_work_queue = absl::GetFlag(FLAGS_slow_work_queue);
  config.port_file = absl::GetFlag(FLAGS_port_file);
  config.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  config.ucx = absl::GetFlag(FLAGS_ucx);
  config.verbs = absl::GetFlag(FLAGS_verbs);
  config.verbs_device = absl::GetFlag(FLAGS_verbs_device);
  config.verbs_gid_index = absl::GetFlag(FLAGS_verbs_gid_index);
  config.tenants = absl::GetFlag(FLAGS_tenants);
  config.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  config.tls_key = absl::GetFlag(FLAGS_tls_key);
  config.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  absl::StatusOr<LogLevel> level = ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  if (!level.ok()) return level.status();
  config.log_level = *level;
  config.etcd = absl::GetFlag(FLAGS_etcd);
  config.etcd_prefix = absl::GetFlag(FLAGS_etcd_prefix);
  config.etcd_ttl = absl::GetFlag(FLAGS_etcd_ttl);
  config.node_name = absl::GetFlag(FLAGS_node_name);
  config.node_id = absl::GetFlag(FLAGS_node_id);
  config.advertise = absl::GetFlag(FLAGS_advertise);
  if (absl::Status checked = CheckDaemonConfig(config); !checked.ok()) return checked;
  return config;
}

absl::StatusOr<DaemonConfig> ParseDaemonCommandLine(int argc, char** argv) {
  std::vector<std::string> given(argv, argv + argc);
  if (given.empty()) given.push_back("sparsepoold");
  // Flags end at "--" (Abseil's rule): what follows is positional, and refused later.
  const size_t flags_end = std::find(given.begin() + 1, given.end(), "--") - given.begin();
  // The config file first, so that the command line's flags win over it.
  std::string config_path;
  int configs = 0;
  for (size_t i = 1; i < flags_end; ++i) {
    absl::string_view name = given[i];
    if (absl::ConsumePrefix(&name, "-") && (absl::ConsumePrefix(&name, "-"), absl::ConsumeSuffix(&name, "=")) &&
        name.find('=') == absl::string_view::npos && DaemonFlag(name) != nullptr) {
      return EmptyValue(absl::StrCat("--", name));
    }
    if (std::optional<std::string> path = FlagValue(given, i, "config")) {
      config_path = *path;
      ++configs;
    }
  }
  if (configs > 1) return absl::InvalidArgumentError("--config is given more than once: give one config file");
  if (!config_path.empty()) {
    absl::StatusOr<std::string> text = ReadFileText(config_path, "config file");
    if (!text.ok()) return text.status();
    if (absl::Status applied = ApplyConfigText(*text, config_path); !applied.ok()) return applied;
  }
  // Abseil keeps the last of a repeated flag; repeated --region flags add up instead,
  // so they become one, in place of the first.
  std::vector<std::string> args;
  std::vector<std::string> regions;
  size_t first_region = 0;
  for (size_t i = 0; i < given.size(); ++i) {
    if (i > 0 && i < flags_end) {
      if (std::optional<std::string> spec = FlagValue(given, i, "region")) {
        if (regions.empty()) first_region = args.size();
        regions.push_back(*spec);
        if (regions.size() == 1) args.emplace_back();
        continue;
      }
    }
    args.push_back(given[i]);
  }
  if (!regions.empty()) args[first_region] = absl::StrCat("--region=", absl::StrJoin(regions, ";"));
  std::vector<char*> pointers;
  for (std::string& arg : args) pointers.push_back(arg.data());
  const std::vector<std::string> positional =
      ParseCommandLine(static_cast<int>(pointers.size()), pointers.data(), kUsage);
  if (!positional.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument \"", Quoted(positional[0]), "\" (flags are --name=value; --help lists them)"));
  }
  if (absl::GetFlag(FLAGS_config) != config_path) {
    return absl::InvalidArgumentError("--config is read before the other flags: give it on the command line, "
                                      "not in a --flagfile");
  }
  return DaemonConfigFromFlags();
}

}  // namespace sparsepool
