// A minimal HTTP endpoint for Prometheus: GET /metrics answers with the text a
// function renders; anything else gets 404 or 400. One thread serves every connection
// at once (non-blocking sockets under poll), so idle or slow clients never hold up a
// scrape: each connection has 2 s for its whole exchange, and beyond kMaxConnections
// new ones are closed at once. Off unless the daemon is started with --metrics_listen.
#ifndef SPARSEPOOL_SERVICE_METRICS_HTTP_H_
#define SPARSEPOOL_SERVICE_METRICS_HTTP_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/scoped_fd.h"

namespace sparsepool {

// The path of a request's head ("GET /metrics HTTP/1.1\r\n..."): InvalidArgument for
// anything but a GET request line of HTTP/1.0 or 1.1, naming what was wrong.
absl::StatusOr<std::string> ParseGetRequest(absl::string_view head);

class MetricsHttpServer {
 public:
  // Listens on `listen` (HOST:PORT; port 0 picks a free one) and serves until destroyed.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen, std::function<std::string()> render);
  // Stops accepting and joins the thread.
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }

  static constexpr size_t kMaxConnections = 256;

 private:
  MetricsHttpServer(ScopedFd listener, ScopedFd stop, int port, std::function<std::string()> render);
  struct Connection;
  void Serve();
  // Moves one connection along (read the head, write the answer, drain); false once
  // it is done with.
  bool Progress(Connection& connection);
  std::string Answer(const std::string& head);

  const ScopedFd listener_;
  const ScopedFd stop_;  // an eventfd the destructor writes to wake Serve
  const int port_;
  const std::function<std::string()> render_;
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_METRICS_HTTP_H_
