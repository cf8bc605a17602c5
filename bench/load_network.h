// Where sparsepool-load runs the daemon for its net-cut fault: a test host, a network
// namespace joined to this one by a veth pair (iproute2), so that the link between the
// workers and the daemon can be cut and healed while both keep running. The region
// files stay shared (one mount of /dev/shm): over CXL only the control plane crosses
// the link; over UCX every fetch and write does. Needs root.
#ifndef SPARSEPOOL_BENCH_LOAD_NETWORK_H_
#define SPARSEPOOL_BENCH_LOAD_NETWORK_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sparsepool::bench {

class DaemonNetwork {
 public:
  // Makes the namespace and the link: a /24 of 198.18.0.0/15 (set aside for benchmarks),
  // .2 there and .1 here, picked by our pid. Commands' output goes to `log_path`.
  // FailedPrecondition saying why when it cannot (not root, no iproute2).
  static absl::StatusOr<std::unique_ptr<DaemonNetwork>> Create(const std::string& log_path);
  // Removes the link and the namespace (a daemon still inside keeps running, cut off).
  ~DaemonNetwork();
  DaemonNetwork(const DaemonNetwork&) = delete;
  DaemonNetwork& operator=(const DaemonNetwork&) = delete;

  // `argv` run inside the namespace (argv[0] a path).
  std::vector<std::string> Inside(const std::vector<std::string>& argv) const;
  // The daemon's side of the link: what it listens on and the workers dial.
  std::string address() const;
  // The link down (a network partition) or up (healed).
  absl::Status SetLink(bool up);

 private:
  DaemonNetwork(std::string ns, std::string link, int subnet, std::string log_path);
  absl::Status Run(const std::vector<std::string>& argv) const;
  std::string Prefix() const;  // the /24's first three octets

  const std::string ns_;
  const std::string link_;  // this side's end of the veth pair
  const int subnet_;  // 0-511 over 198.18.0.0/15
  const std::string log_path_;
};

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_LOAD_NETWORK_H_
