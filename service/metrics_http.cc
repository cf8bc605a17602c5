#include "service/metrics_http.h"

#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sparsepool {
namespace {

constexpr size_t kMaxHeadBytes = 8192;
constexpr int kReadTimeoutSeconds = 2;

absl::Status SocketError(absl::string_view what, const std::string& listen) {
  return absl::UnavailableError(
      absl::StrCat("metrics endpoint ", listen, ": ", what, ": ", std::strerror(errno)));
}

std::string Response(absl::string_view status, absl::string_view content_type,
                     absl::string_view body) {
  return absl::StrCat("HTTP/1.1 ", status, "\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
}

}  // namespace

absl::StatusOr<std::string> ParseGetRequest(absl::string_view head) {
  const size_t end = head.find("\r\n");
  if (end == absl::string_view::npos) {
    return absl::InvalidArgumentError("request line not terminated by CRLF");
  }
  const std::vector<absl::string_view> parts = absl::StrSplit(head.substr(0, end), ' ');
  if (parts.size() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("request line has ", parts.size(), " space-separated parts, not 3"));
  }
  if (parts[0] != "GET") {
    return absl::InvalidArgumentError(absl::StrCat("method ", parts[0], " is not GET"));
  }
  if (parts[2] != "HTTP/1.1" && parts[2] != "HTTP/1.0") {
    return absl::InvalidArgumentError("not HTTP/1.0 or HTTP/1.1");
  }
  if (parts[1].empty() || parts[1][0] != '/') {
    return absl::InvalidArgumentError("path does not start with /");
  }
  // Query strings (?name[]=...) are ignored, as Prometheus servers do.
  return std::string(parts[1].substr(0, parts[1].find('?')));
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, std::function<std::string()> render) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("metrics_listen \"", listen, "\" is not HOST:PORT"));
  }
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics_listen \"", listen, "\": ", gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, &freeaddrinfo);
  ScopedFd listener(socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return SocketError("socket", listen);
  const int one = 1;
  setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(listener.get(), found->ai_addr, found->ai_addrlen) != 0) return SocketError("bind", listen);
  if (::listen(listener.get(), 128) != 0) return SocketError("listen", listen);
  sockaddr_storage bound{};
  socklen_t bound_size = sizeof(bound);
  if (getsockname(listener.get(), reinterpret_cast<sockaddr*>(&bound), &bound_size) != 0) {
    return SocketError("getsockname", listen);
  }
  const int bound_port = ntohs(bound.ss_family == AF_INET6
                                   ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                   : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  ScopedFd stop(eventfd(0, EFD_CLOEXEC));
  if (!stop.valid()) return SocketError("eventfd", listen);
  return std::unique_ptr<MetricsHttpServer>(
      new MetricsHttpServer(std::move(listener), std::move(stop), bound_port, std::move(render)));
}

MetricsHttpServer::MetricsHttpServer(ScopedFd listener, ScopedFd stop, int port,
                                     std::function<std::string()> render)
    : listener_(std::move(listener)), stop_(std::move(stop)), port_(port),
      render_(std::move(render)), thread_([this] { Serve(); }) {}

MetricsHttpServer::~MetricsHttpServer() {
  const uint64_t one = 1;
  (void)!write(stop_.get(), &one, sizeof(one));
  thread_.join();
}

// One connection's exchange: read the head, write the answer, then read what the client
// still sends until it closes (closing with unread input makes the kernel reset the
// connection, and a reset can destroy the response before the client reads it).
struct MetricsHttpServer::Connection {
  ScopedFd fd;
  absl::Time deadline;
  std::string head;
  std::string out;  // the answer, once the head is complete
  size_t sent = 0;
  bool draining = false;
};

void MetricsHttpServer::Serve() {
  std::vector<std::unique_ptr<Connection>> connections;
  while (true) {
    std::vector<pollfd> fds = {{listener_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    absl::Time next_deadline = absl::InfiniteFuture();
    for (const auto& c : connections) {
      const bool writing = !c->out.empty() && !c->draining;
      fds.push_back({c->fd.get(), static_cast<short>(writing ? POLLOUT : POLLIN), 0});
      next_deadline = std::min(next_deadline, c->deadline);
    }
    const int timeout_ms = next_deadline == absl::InfiniteFuture()
                               ? -1
                               : static_cast<int>(std::max<int64_t>(
                                     0, absl::ToInt64Milliseconds(absl::Ceil(next_deadline - absl::Now(),
                                                                             absl::Milliseconds(1)))));
    if (poll(fds.data(), fds.size(), timeout_ms) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    // Connections first (their indices match fds), then new ones.
    std::vector<std::unique_ptr<Connection>> kept;
    const absl::Time now = absl::Now();
    for (size_t i = 0; i < connections.size(); ++i) {
      bool keep = now < connections[i]->deadline;
      if (keep && fds[i + 2].revents != 0) keep = Progress(*connections[i]);
      if (keep) kept.push_back(std::move(connections[i]));
    }
    connections.swap(kept);
    if (fds[0].revents & POLLIN) {
      ScopedFd accepted(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (accepted.valid()) {
        if (connections.size() < kMaxConnections) {
          auto c = std::make_unique<Connection>();
          c->fd = std::move(accepted);
          c->deadline = absl::Now() + absl::Seconds(kReadTimeoutSeconds);
          connections.push_back(std::move(c));
        }  // else closed at once: the scraper retries
      } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // The connection stays queued and poll reports it again at once: pause rather
        // than spin until a descriptor or memory frees up.
        poll(nullptr, 0, 100);
      }
    }
  }
}

bool MetricsHttpServer::Progress(Connection& c) {
  char buffer[1024];
  if (c.draining) {
    const ssize_t n = recv(c.fd.get(), buffer, sizeof(buffer), 0);
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR));
  }
  if (c.out.empty()) {
    // Read the head (up to the blank line); the body of a GET is not expected. The whole
    // head must come within the deadline: a client trickling bytes is cut off too.
    const ssize_t n = recv(c.fd.get(), buffer, sizeof(buffer), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
    if (n > 0) c.head.append(buffer, static_cast<size_t>(n));
    if (c.head.find("\r\n\r\n") == std::string::npos) {
      if (c.head.size() < kMaxHeadBytes) return true;
      c.out = Response("431 Request Header Fields Too Large", "text/plain", "request head over 8 KiB\n");
    } else {
      c.out = Answer(c.head);
    }
  }
  while (c.sent < c.out.size()) {
    const ssize_t n = send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;  // poll says when
    if (n <= 0) return false;  // the scraper went away; nothing to do about it
    c.sent += static_cast<size_t>(n);
  }
  shutdown(c.fd.get(), SHUT_WR);
  c.draining = true;
  return true;
}

std::string MetricsHttpServer::Answer(const std::string& head) {
  auto path = ParseGetRequest(head);
  if (!path.ok()) return Response("400 Bad Request", "text/plain", absl::StrCat(path.status().message(), "\n"));
  if (*path != "/metrics") return Response("404 Not Found", "text/plain", "only /metrics is served here\n");
  return Response("200 OK", "text/plain; version=0.0.4; charset=utf-8", render_());
}

}  // namespace sparsepool
