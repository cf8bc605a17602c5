#include "tests/etcd_process.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cluster/etcd_client.h"

namespace sparsepool::testing {

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

EtcdProcess::EtcdProcess(absl::string_view name, bool listen_all)
    : name_(name), data_dir_(absl::StrCat(TestTempDir(), "/etcd-", name, "-", getpid())), listen_all_(listen_all) {
  std::filesystem::remove_all(data_dir_);
  endpoint_ = absl::StrCat("127.0.0.1:", FreeLoopbackPort());
  peer_port_ = FreeLoopbackPort();
}

EtcdProcess::~EtcdProcess() {
  if (process_.running()) process_.Signal(SIGKILL);
  std::filesystem::remove_all(data_dir_);
}

absl::Status EtcdProcess::Start() {
  if (access("/usr/bin/etcd", X_OK) != 0) {
    return absl::FailedPreconditionError("no /usr/bin/etcd: apt-get install etcd-server");
  }
  const std::string client_url = absl::StrCat("http://", endpoint_);
  const std::string peer_url = absl::StrCat("http://127.0.0.1:", peer_port_);
  if (absl::Status s = process_.Start({"/usr/bin/etcd", absl::StrCat("--name=", name_),
                                       absl::StrCat("--data-dir=", data_dir_),
                                       absl::StrCat("--listen-client-urls=",
                                                    listen_all_ ? absl::StrCat("http://0.0.0.0:", endpoint_.substr(endpoint_.rfind(':') + 1))
                                                                : client_url),
                                       absl::StrCat("--advertise-client-urls=", client_url),
                                       absl::StrCat("--listen-peer-urls=", peer_url),
                                       absl::StrCat("--initial-advertise-peer-urls=", peer_url),
                                       absl::StrCat("--initial-cluster=", name_, "=", peer_url)});
      !s.ok()) {
    return s;
  }
  // Ready when a client's first call is answered (the output alone spans restarts).
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  absl::Status last;
  while (absl::Now() < deadline) {
    auto client = cluster::EtcdClient::Connect(endpoint_, absl::Seconds(1));
    if (client.ok()) return absl::OkStatus();
    last = client.status();
    if (process_.Poll().has_value()) return absl::InternalError(absl::StrCat("etcd exited: ", Log()));
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("etcd did not serve in 20 s: ", last.ToString(), "\n", Log()));
}

}  // namespace sparsepool::testing
