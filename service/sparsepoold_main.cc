// sparsepoold: the memory-pool daemon of a memory node. Maps its regions, recovers
// the sequences already in them, serves the control plane over gRPC, expires the
// leases of vanished clients, and shuts down cleanly on SIGTERM or SIGINT.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/security/server_credentials.h"
#include "common/file_text.h"
#include "common/log.h"
#include "common/periodic_thread.h"
#include "common/units.h"
#include "service/delayed_calls.h"
#include "service/metrics_http.h"
#include "service/metrics_text.h"
#include "service/rpc_metrics.h"
#include "service/clock.h"
#include "service/cluster_node.h"
#include "service/daemon_config.h"
#include "service/daemon_flags.h"
#include "service/pool.h"
#include "service/pool_service.h"
#include "service/region_store.h"
#include "service/tenants.h"
#include "service/ucx_domain_server.h"
#include "service/ucx_publisher.h"
#include "service/verbs_acceptor.h"

namespace sparsepool {
namespace {

// gRPC's server credentials: TLS with the configured certificate (and client CA), or
// plaintext when none is given.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(const DaemonConfig& config) {
  if (config.tls_cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(config.tls_client_ca.empty()
                                                ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                                : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  auto cert = ReadFileText(config.tls_cert, "the TLS certificate chain");
  if (!cert.ok()) return cert.status();
  auto key = ReadFileText(config.tls_key, "the TLS private key");
  if (!key.ok()) return key.status();
  options.pem_key_cert_pairs.push_back({*key, *cert});
  if (!config.tls_client_ca.empty()) {
    auto ca = ReadFileText(config.tls_client_ca, "the client CA");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
  }
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::vector<std::unique_ptr<RegionStore>>> OpenRegions(const DaemonConfig& config,
                                                                      const Clock& clock, Logger& log) {
  std::vector<std::unique_ptr<RegionStore>> regions;
  for (const RegionSpec& spec : config.regions) {
    auto mapping = MappedRegion::OpenOrCreate(spec);
    if (!mapping.ok()) return mapping.status();
    RecoveryReport report;
    auto store = RegionStore::Open(static_cast<uint32_t>(regions.size()), *std::move(mapping),
                                   config.record_slots,
                                   static_cast<uint64_t>(absl::ToUnixNanos(clock.Now())), &report);
    if (!store.ok()) return store.status();
    const RegionStore& s = **store;
    log.Info(absl::StrCat("region ", s.ref().index, ": ", s.ref().kind, " ", s.ref().path, ", ",
                     FormatBytes(s.ref().size_bytes), ", ",
                     s.formatted_now() ? "formatted" : "recovered ", 
                     s.formatted_now() ? "" : absl::StrCat(report.sequences, " sequences"),
                     ", heap ", FormatBytes(s.capacity_bytes()), " (",
                     FormatBytes(s.free_bytes()), " free)"));
    for (const std::string& problem : report.problems) log.Info(absl::StrCat("recovery: ", problem));
    regions.push_back(*std::move(store));
  }
  return regions;
}

absl::Status WritePortFile(const std::string& path, int port) {
  return WriteFileTextAtomically(path, absl::StrCat(port, "\n"));
}

int Run(int argc, char** argv) {
  // Block the stop signals in every thread (gRPC's included); main waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto config = ParseDaemonCommandLine(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "sparsepoold: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  Logger log(LogOptions{.min_level = config->log_level});
  std::optional<TenantDirectory> tenants;
  if (!config->tenants.empty()) {
    auto loaded = TenantDirectory::Load(config->tenants);
    if (!loaded.ok()) {
      log.Error(absl::StrCat("cannot load the tenants: ", loaded.status().ToString()));
      return 1;
    }
    tenants = *std::move(loaded);
  }
  PoolOptions pool_options{config->page_tokens, config->lease_timeout, config->reuse_grace};
  pool_options.node_id = config->node_id;
  for (const RegionSpec& spec : config->regions) {
    for (const std::string& tenant : spec.tenants) {
      if (!tenants || tenants->FindTenant(tenant) == nullptr) {
        log.Error(absl::StrCat("region ", spec.path, " is dedicated to \"", tenant, "\", which is no tenant of ",
                               config->tenants));
        return 1;
      }
    }
    pool_options.region_tenants.push_back(spec.tenants);
  }
  SystemClock clock;
  auto regions = OpenRegions(*config, clock, log);
  if (!regions.ok()) {
    log.Error(absl::StrCat("cannot open regions: ", regions.status().ToString()));
    return 1;
  }
  // The regions' memory, for the RDMA publishers (in region-index order), and what a
  // process of its own needs to map each again.
  std::vector<PublishedRegion> published;
  std::vector<UcxDomainRegion> mappable;
  for (uint32_t r = 0; r < regions->size(); ++r) {
    const RegionStore& region = *(*regions)[r];
    published.push_back({region.base(), region.ref().size_bytes});
    mappable.push_back({r, config->regions[r].kind, region.ref().path, region.ref().size_bytes});
  }
  auto opened = Pool::Open(*std::move(regions), pool_options, &clock);
  if (!opened.ok()) {
    log.Error(absl::StrCat("cannot open the pool: ", opened.status().ToString()));
    return 1;
  }
  Pool& pool = **opened;
  for (const std::string& problem : pool.recovery_problems()) log.Info(absl::StrCat("recovery: ", problem));
  const std::vector<std::vector<uint32_t>>& domains = pool.access().domains();
  for (size_t d = 0; d < domains.size(); ++d) {
    log.Info(absl::StrCat("data-plane domain ", d, ": region(s) ", absl::StrJoin(domains[d], ","),
                     pool.access().TenantsOf(domains[d][0]).empty()
                         ? " (shared)"
                         : absl::StrCat(" (dedicated to ", absl::StrJoin(pool.access().TenantsOf(domains[d][0]), ","), ")")));
  }
  std::unique_ptr<UcxPublisher> ucx;
  if (config->ucx) {
    // One worker per domain, each in a process that maps only the domain's regions:
    // UCX's software RMA (tcp, sm) reads and writes wherever a peer says, without keys.
    std::vector<std::vector<UcxDomainRegion>> ucx_domains;
    for (const std::vector<uint32_t>& domain : domains) {
      ucx_domains.emplace_back();
      for (uint32_t r : domain) ucx_domains.back().push_back(mappable[r]);
    }
    auto created = UcxPublisher::Create(ucx_domains, "/proc/self/exe");
    if (!created.ok()) {
      log.Error(absl::StrCat("cannot publish regions over UCX: ", created.status().ToString()));
      return 1;
    }
    ucx = *std::move(created);
    log.Info(absl::StrCat("regions published over UCX by ", domains.size(),
                     " worker process(es), one per domain (UCX_TLS chooses the wire)"));
  }
  std::unique_ptr<VerbsAcceptor> verbs;
  if (config->verbs) {
    VerbsOptions verbs_options;
    verbs_options.device = config->verbs_device;
    verbs_options.gid_index = static_cast<uint8_t>(config->verbs_gid_index);
    auto created = VerbsAcceptor::Create(verbs_options, published, domains);
    if (!created.ok()) {
      log.Error(absl::StrCat("cannot serve regions over libibverbs: ", created.status().ToString()));
      return 1;
    }
    verbs = *std::move(created);
    log.Info("regions registered for RDMA READ/WRITE (libibverbs), one protection domain per domain");
  }
  DelayedCalls delayed;  // requests waiting for memory in its reuse grace
  auto credentials = ServerCredentialsFor(*config);
  if (!credentials.ok()) {
    log.Error(absl::StrCat("cannot set up TLS: ", credentials.status().ToString()));
    return 1;
  }
  // Declared after `delayed`, so stopped before it (see the shutdown below).
  std::unique_ptr<FairWorkQueue> slow_work;
  if (config->slow_work_threads > 0) {
    FairWorkQueue::Options slow_options;
    slow_options.threads = static_cast<int>(config->slow_work_threads);
    slow_options.max_queued_per_tenant = config->slow_work_queue;
    slow_options.max_queued = std::max<size_t>(config->slow_work_queue, 4096);
    slow_work = std::make_unique<FairWorkQueue>(slow_options);
  }
  PoolServiceImpl service(&pool, &clock, &delayed, ucx.get(), verbs.get(), tenants ? &*tenants : nullptr,
                          slow_work.get());

  RpcMetrics rpc_metrics(v1::PoolService::service_full_name());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config->listen, *credentials, &port);
  builder.RegisterService(&service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(rpc_metrics.InterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  // Layouts of long sequences carry [layers x pages] offsets: 128K tokens of 61
  // layers is about 1 MB; leave room for far longer contexts.
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(256 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    log.Error(absl::StrCat("cannot listen on ", config->listen));
    return 1;
  }
  const std::string host = config->listen.substr(0, config->listen.rfind(':'));
  log.Info(absl::StrCat("serving on ", host, ":", port, ", ", config->regions.size(),
                   " region(s), page_tokens ", config->page_tokens, ", lease timeout ",
                   absl::FormatDuration(config->lease_timeout), ", reuse grace ",
                   absl::FormatDuration(config->reuse_grace), config->tls_cert.empty() ? ", plaintext" : ", TLS",
                   config->tls_client_ca.empty() ? "" : " with client certificates",
                   tenants ? absl::StrCat(", ", tenants->entries().size(), " tenants and operators") : ", no tenants"));
  // A node of a cluster: registered in etcd once it serves (and before its port file says
  // it is ready), and gone from it (its lease revoked) before it stops serving.
  std::unique_ptr<cluster::NodeRegistration> registration;
  std::atomic<bool> registration_lost{false};
  if (!config->etcd.empty()) {
    auto joined = JoinCluster(*config, pool, port, [&log](const std::string& line) { log.Info(line); },
                              [&registration_lost, &log](const absl::Status& lost) {
                                log.Error(absl::StrCat("cluster registration lost: ", lost.ToString(),
                                                       "; stopping, since another node now manages this memory"));
                                registration_lost = true;
                                kill(getpid(), SIGTERM);
                              });
    if (!joined.ok()) {
      log.Error(absl::StrCat("cannot join the cluster: ", joined.status().ToString()));
      server->Shutdown();
      return 1;
    }
    registration = *std::move(joined);
    log.Info(absl::StrCat("node \"", config->node_name, "\" (id ", config->node_id, ") registered in etcd at ",
                     config->etcd, " under ", config->etcd_prefix, ", lease ", registration->lease()));
  }

  if (!config->port_file.empty()) {
    absl::Status written = WritePortFile(config->port_file, port);
    if (!written.ok()) {
      log.Info(written.ToString());
      server->Shutdown();
      return 1;
    }
  }

  std::unique_ptr<MetricsHttpServer> metrics;
  if (!config->metrics_listen.empty()) {
    const absl::Time started = clock.Now();
    auto serving = MetricsHttpServer::Start(config->metrics_listen, [&pool, &delayed, &slow_work, &clock, &rpc_metrics,
                                                                     started] {
      return MetricsText(DaemonFigures{pool.Stats(), delayed.waiting(),
                                       slow_work != nullptr ? slow_work->counters() : FairWorkQueue::Counters{},
                                       clock.Now() - started}) +
             rpc_metrics.Text();
    });
    if (!serving.ok()) {
      log.Info(serving.status().ToString());
      server->Shutdown();
      return 1;
    }
    metrics = *std::move(serving);
    log.Info(absl::StrCat("metrics on http://",
                     config->metrics_listen.substr(0, config->metrics_listen.rfind(':')), ":",
                     metrics->port(), "/metrics"));
  }

  {
    PeriodicThread lease_reaper(std::min(config->lease_timeout / 4, absl::Seconds(1)), [&pool, &verbs, &service, &log] {
      const std::vector<LeaseTable::Expired> expired_leases = pool.ExpireLeases();
      const bool fences_dropped = pool.DropStaleFences();
      if (!expired_leases.empty() || fences_dropped) service.ReleasesChanged();
      for (const LeaseTable::Expired& expired : expired_leases) {
        // Clients choose their ids and how many leases expire at once: a few lines a
        // window, each bounded, and a count of the rest.
        constexpr size_t kIdsShown = 16;
        const std::vector<SequenceId> shown(expired.sequences.begin(),
                                            expired.sequences.begin() +
                                                std::min(kIdsShown, expired.sequences.size()));
        log.Limited(LogLevel::kInfo, "leases expired",
                    absl::StrCat("lease of client \"", Quoted(expired.client), "\" expired; ",
                                 expired.sequences.size(), " sequence(s) reclaimable: ", absl::StrJoin(shown, ","),
                                 expired.sequences.size() > kIdsShown ? ",..." : ""));
        if (verbs != nullptr) verbs->Forget(expired.client);  // its queue pair too
      }
      log.Flush();
    });
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    log.Info(absl::StrCat("received ", strsignal(signal_number), "; shutting down"));
    registration.reset();  // leave the cluster first: no new placements come here
    // Requests queued or waiting for memory are answered (Unavailable) now: the
    // server's shutdown waits for every request it started. The queue first: what runs
    // there may still hand a call to `delayed`, and what `delayed` then runs finds the
    // queue stopped and answers at once.
    if (slow_work != nullptr) slow_work->Stop();
    delayed.Stop();
    service.StopWatching();
    // Control-plane calls take milliseconds; an idle client connection can hold a
    // sync server's shutdown until the deadline, so keep it short.
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
  server->Wait();
  // Region memory needs no flush: every committed record is already in it.
  log.Info("stopped");
  return registration_lost ? 1 : 0;
}

}  // namespace
}  // namespace sparsepool

int main(int argc, char** argv) {
  // The daemon starts itself again as the UCX worker of each data-plane domain.
  if (argc > 1 && std::string(argv[1]) == sparsepool::kUcxDomainServerFlag) {
    return sparsepool::RunUcxDomainServer(argc, argv);
  }
  return sparsepool::Run(argc, argv);
}
