#include "service/cluster_node.h"

#include <grpcpp/grpcpp.h>

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_text.h"
#include "common/region_format.h"
#include "proto/sparsepool.grpc.pb.h"

namespace sparsepool {
namespace {

// The credentials another node's control plane is called with: plaintext, or TLS with
// the CA of the cluster (the client CA if there is one, else this daemon's own chain:
// nodes of one cluster share their CA).
std::shared_ptr<grpc::ChannelCredentials> PeerCredentials(const DaemonConfig& config) {
  if (config.tls_cert.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  auto roots = ReadFileText(config.tls_client_ca.empty() ? config.tls_cert : config.tls_client_ca, "the cluster CA");
  if (roots.ok()) options.pem_root_certs = *roots;
  if (!config.tls_client_ca.empty()) {
    // Daemons that require client certificates: this one presents its own.
    auto cert = ReadFileText(config.tls_cert, "the TLS certificate chain");
    auto key = ReadFileText(config.tls_key, "the TLS private key");
    if (cert.ok() && key.ok()) {
      options.pem_cert_chain = *cert;
      options.pem_private_key = *key;
    }
  }
  return grpc::SslCredentials(options);
}

std::optional<uint64_t> IncarnationAt(const std::string& address,
                                      const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  auto stub = v1::PoolService::NewStub(grpc::CreateChannel(address, credentials));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  v1::HealthResponse response;
  if (!stub->Health(&context, v1::HealthRequest(), &response).ok()) return std::nullopt;
  return response.incarnation();
}

}  // namespace

absl::StatusOr<std::unique_ptr<cluster::NodeRegistration>> JoinCluster(
    const DaemonConfig& config, Pool& pool, int port, std::function<void(const std::string&)> log,
    std::function<void(const absl::Status&)> on_lost) {
  std::string address = config.advertise;
  if (address.empty()) {
    const std::string host = config.listen.substr(0, config.listen.rfind(':'));
    if (host == "0.0.0.0" || host == "[::]" || host == "::" || host.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("listening on ", config.listen,
                                                     ": give --advertise=HOST:PORT, the address clients reach"));
    }
    address = absl::StrCat(host, ":", port);
  }
  std::vector<std::string> transports = {"cxl"};
  if (config.ucx) transports.push_back("ucx");
  if (config.verbs) transports.push_back("verbs");
  const int64_t started_ms = absl::ToUnixMillis(absl::Now());

  cluster::NodeHooks hooks;
  hooks.snapshot = [&config, &pool, address, transports, started_ms] {
    const PoolStats stats = pool.Stats();
    cluster::NodeRecord node;
    node.set_name(config.node_name);
    node.set_node_id(config.node_id);
    node.set_address(address);
    node.set_incarnation(pool.incarnation());
    node.set_live_sequences(stats.live_sequences);
    node.set_started_unix_ms(started_ms);
    node.set_updated_unix_ms(absl::ToUnixMillis(absl::Now()));
    for (const std::string& t : transports) node.add_transports(t);
    for (size_t r = 0; r < stats.regions.size(); ++r) {
      const RegionUsage& usage = stats.regions[r];
      cluster::RegionRecord* region = node.add_regions();
      region->set_uuid(region_format::UuidToString(usage.region.uuid));
      region->set_kind(usage.region.kind);
      region->set_path(usage.region.path);
      region->set_capacity_bytes(usage.capacity_bytes);
      region->set_free_bytes(usage.free_bytes + usage.reclaimable_bytes);
      if (r < config.regions.size()) {
        for (const std::string& tenant : config.regions[r].tenants) region->add_tenants(tenant);
      }
    }
    return node;
  };
  hooks.incarnation_at = [credentials = PeerCredentials(config)](const std::string& peer) {
    return IncarnationAt(peer, credentials);
  };
  hooks.on_lost = std::move(on_lost);
  hooks.log = std::move(log);
  cluster::NodeRegistrationOptions options;
  options.etcd = config.etcd;
  options.prefix = config.etcd_prefix;
  options.ttl = config.etcd_ttl;
  return cluster::NodeRegistration::Register(options, std::move(hooks));
}

}  // namespace sparsepool
