// A real sparsepoold process for integration tests: started on a shm region of its
// own and a free loopback port, stopped (SIGTERM), killed (SIGKILL) and restarted on
// the same region. The region file is removed when the object is destroyed.
#ifndef SPARSEPOOL_TESTS_DAEMON_PROCESS_H_
#define SPARSEPOOL_TESTS_DAEMON_PROCESS_H_

#include <signal.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/child_process.h"

namespace sparsepool::testing {

struct DaemonOptions {
  std::string region_size = "256MiB";
  // Where the region file goes and its kind: "shm" in /dev/shm by default; a
  // hugetlbfs mount with "hugetlbfs".
  std::string region_dir = "/dev/shm";
  std::string region_kind = "shm";
  std::string lease_timeout = "30s";
  uint32_t record_slots = 1024;
  std::vector<std::string> extra_args;
  // Restart on the address of the first start, as a real daemon's restart would, so
  // that existing clients reconnect; otherwise each start picks a free port.
  bool same_address_on_restart = false;
};

class DaemonProcess {
 public:
  // `name` makes the region and port file unique to the test.
  explicit DaemonProcess(absl::string_view name, DaemonOptions options = {});
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // Starts the daemon and waits until it serves at address().
  absl::Status Start();
  // SIGTERM; returns the exit code.
  int Stop() { return process_.Signal(SIGTERM); }
  // SIGKILL: the daemon gets no chance to clean up.
  void Kill() { process_.Signal(SIGKILL); }

  const std::string& address() const { return address_; }
  const std::string& region_path() const { return region_path_; }
  // Everything the daemon printed, across restarts.
  std::string Log() const { return process_.Output(); }

 private:
  DaemonOptions options_;
  std::string region_path_;
  std::string port_file_;
  std::string address_;
  ChildProcess process_;
};

}  // namespace sparsepool::testing

#endif  // SPARSEPOOL_TESTS_DAEMON_PROCESS_H_
