#include "bench/load_network.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "bench/load_processes.h"

namespace sparsepool::bench {
namespace {

constexpr char kIp[] = "/usr/sbin/ip";

}  // namespace

DaemonNetwork::DaemonNetwork(std::string ns, std::string link, int subnet, std::string log_path)
    : ns_(std::move(ns)), link_(std::move(link)), subnet_(subnet), log_path_(std::move(log_path)) {}

absl::StatusOr<std::unique_ptr<DaemonNetwork>> DaemonNetwork::Create(const std::string& log_path) {
  if (geteuid() != 0) {
    return absl::FailedPreconditionError("net-cut puts the daemon in a network namespace of its own: it needs root");
  }
  if (access(kIp, X_OK) != 0) return absl::FailedPreconditionError(absl::StrCat("net-cut needs iproute2 (", kIp, ")"));
  const int id = getpid() % 100000;
  // 198.18.0.0/15 is set aside for benchmarks (RFC 2544): no real route to shadow. The
  // subnet is this run's own unless another run on the host holds it, which Create
  // finds ("ip addr add" of an address a link already has fails).
  std::unique_ptr<DaemonNetwork> network(
      new DaemonNetwork(absl::StrCat("spload", id), absl::StrCat("spl", id, "h"), getpid() % 512, log_path));
  const std::string there = network->link_ + "x";
  const std::string here_address = absl::StrCat(network->Prefix(), ".1/24");
  const std::string there_address = absl::StrCat(network->address(), "/24");
  for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
           {kIp, "netns", "add", network->ns_},
           {kIp, "link", "add", network->link_, "type", "veth", "peer", "name", there},
           {kIp, "link", "set", there, "netns", network->ns_},
           {kIp, "addr", "add", here_address, "dev", network->link_},
           {kIp, "link", "set", network->link_, "up"},
           {kIp, "-n", network->ns_, "addr", "add", there_address, "dev", there},
           {kIp, "-n", network->ns_, "link", "set", there, "up"},
           {kIp, "-n", network->ns_, "link", "set", "lo", "up"}}) {
    if (absl::Status s = network->Run(argv); !s.ok()) return s;  // the destructor removes what was made
  }
  return network;
}

DaemonNetwork::~DaemonNetwork() {
  (void)Run({kIp, "link", "del", link_});
  (void)Run({kIp, "netns", "del", ns_});
}

std::vector<std::string> DaemonNetwork::Inside(const std::vector<std::string>& argv) const {
  std::vector<std::string> inside = {kIp, "netns", "exec", ns_};
  inside.insert(inside.end(), argv.begin(), argv.end());
  return inside;
}

std::string DaemonNetwork::Prefix() const { return absl::StrCat("198.", 18 + subnet_ / 256, ".", subnet_ % 256); }

std::string DaemonNetwork::address() const { return absl::StrCat(Prefix(), ".2"); }

absl::Status DaemonNetwork::SetLink(bool up) { return Run({kIp, "link", "set", link_, up ? "up" : "down"}); }

absl::Status DaemonNetwork::Run(const std::vector<std::string>& argv) const {
  SpawnOptions options;
  options.log_path = log_path_;
  return RunToCompletion(argv, options);
}

}  // namespace sparsepool::bench
