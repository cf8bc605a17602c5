// A real etcd (Debian's etcd-server) for the cluster tests: on free loopback ports with
// a data directory of the test's own, killed and restarted on the same ports and data.
#ifndef SPARSEPOOL_TESTS_ETCD_PROCESS_H_
#define SPARSEPOOL_TESTS_ETCD_PROCESS_H_

#include <signal.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "tests/child_process.h"

namespace sparsepool::testing {

class EtcdProcess {
 public:
  // `listen_all`: serve clients on every address (test hosts in network namespaces reach
  // it through their gateways), not on loopback only.
  explicit EtcdProcess(absl::string_view name, bool listen_all = false);
  ~EtcdProcess();
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  // Starts etcd and waits until it serves clients (FailedPrecondition when etcd is not
  // installed: apt-get install etcd-server).
  absl::Status Start();
  void Kill() { process_.Signal(SIGKILL); }
  // HOST:PORT of its client endpoint.
  const std::string& endpoint() const { return endpoint_; }
  std::string Log() const { return process_.Output(); }

 private:
  std::string name_;
  std::string data_dir_;
  std::string endpoint_;
  int peer_port_ = 0;
  bool listen_all_ = false;
  ChildProcess process_;
};

// A loopback port free now (bound and released).
int FreeLoopbackPort();

}  // namespace sparsepool::testing

#endif  // SPARSEPOOL_TESTS_ETCD_PROCESS_H_
