// Every RPC the daemon answers, counted by method and status code with a histogram of
// how long it took (from its arrival to its status being sent, waits for memory
// included), for the /metrics endpoint. Recorded by a gRPC server interceptor, so that
// no handler can forget it.
//
// Thread-safe.
#ifndef SPARSEPOOL_SERVICE_RPC_METRICS_H_
#define SPARSEPOOL_SERVICE_RPC_METRICS_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/status.h"

namespace sparsepool {

class RpcMetrics {
 public:
  // Upper bounds of the histogram's buckets, in seconds (and +Inf).
  static constexpr std::array<double, 16> kBucketSeconds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                            0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                            1,      2.5,     5,      10};

  // `service` is the full name of the service whose methods are labelled by name
  // ("sparsepool.v1.PoolService"); anything else, a peer may name freely, is counted
  // as method "other" so that labels stay bounded.
  explicit RpcMetrics(std::string service) : service_prefix_(absl::StrCat("/", service, "/")) {}

  // `method` as gRPC names it ("/sparsepool.v1.PoolService/CreateSequence").
  void Record(absl::string_view method, grpc::StatusCode code, absl::Duration took);

  // The Prometheus text of the histogram family sparsepool_rpc_duration_seconds.
  std::string Text() const;

  // The interceptor factory to give grpc::ServerBuilder (experimental().SetInterceptorCreators).
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> InterceptorFactory();

 private:
  struct Histogram {
    std::array<uint64_t, kBucketSeconds.size() + 1> counts{};  // the last: +Inf
    double sum_seconds = 0;
    uint64_t count = 0;
  };
  const std::string service_prefix_;
  mutable absl::Mutex mu_;
  // By (method, status code name); ordered so that the text is stable.
  std::map<std::pair<std::string, std::string>, Histogram> histograms_ ABSL_GUARDED_BY(mu_);
};

// The name of a status code as gRPC's documentation spells it ("NOT_FOUND").
const char* StatusCodeName(grpc::StatusCode code);

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_RPC_METRICS_H_
