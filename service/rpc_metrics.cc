#include "service/rpc_metrics.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sparsepool {
namespace {

class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(grpc::experimental::ServerRpcInfo* info, RpcMetrics* metrics)
      : method_(info->method()), metrics_(metrics), arrived_(absl::Now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_->Record(method_, methods->GetSendStatus().error_code(), absl::Now() - arrived_);
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  RpcMetrics* const metrics_;
  const absl::Time arrived_;
};

class MetricsInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(RpcMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(info, metrics_);
  }

 private:
  RpcMetrics* const metrics_;
};

}  // namespace

const char* StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "OTHER";
  }
}

void RpcMetrics::Record(absl::string_view method, grpc::StatusCode code, absl::Duration took) {
  std::string name = "other";
  if (absl::StartsWith(method, service_prefix_)) {
    absl::string_view short_name = method.substr(service_prefix_.size());
    // The service's own methods are a handful of plain names; anything longer or odd
    // is not one of them.
    if (!short_name.empty() && short_name.size() <= 32 &&
        std::all_of(short_name.begin(), short_name.end(), [](char c) { return absl::ascii_isalnum(c); })) {
      name = std::string(short_name);
    }
  }
  const double seconds = absl::ToDoubleSeconds(took);
  const size_t bucket =
      std::lower_bound(kBucketSeconds.begin(), kBucketSeconds.end(), seconds) - kBucketSeconds.begin();
  absl::MutexLock lock(&mu_);
  Histogram& h = histograms_[{std::move(name), StatusCodeName(code)}];
  ++h.counts[bucket];
  h.sum_seconds += seconds;
  ++h.count;
}

std::string RpcMetrics::Text() const {
  std::string out =
      "# HELP sparsepool_rpc_duration_seconds Time from an RPC's arrival to its status, by method and status "
      "code (waits for memory included).\n"
      "# TYPE sparsepool_rpc_duration_seconds histogram\n";
  absl::MutexLock lock(&mu_);
  for (const auto& [key, h] : histograms_) {
    const std::string labels = absl::StrCat("method=\"", key.first, "\",code=\"", key.second, "\"");
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= kBucketSeconds.size(); ++b) {
      cumulative += h.counts[b];
      const std::string le = b < kBucketSeconds.size() ? absl::StrFormat("%g", kBucketSeconds[b]) : "+Inf";
      absl::StrAppend(&out, "sparsepool_rpc_duration_seconds_bucket{", labels, ",le=\"", le, "\"} ", cumulative,
                      "\n");
    }
    absl::StrAppendFormat(&out, "sparsepool_rpc_duration_seconds_sum{%s} %.6f\n", labels, h.sum_seconds);
    absl::StrAppend(&out, "sparsepool_rpc_duration_seconds_count{", labels, "} ", h.count, "\n");
  }
  return out;
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> RpcMetrics::InterceptorFactory() {
  return std::make_unique<MetricsInterceptorFactory>(this);
}

}  // namespace sparsepool
