#include "transport/rdma/ucx_context.h"

#include <ucs/debug/log_def.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace sparsepool {

absl::Status UcsError(const std::string& what, ucs_status_t status) {
  const std::string message = absl::StrCat(what, ": ", ucs_status_string(status));
  switch (status) {
    case UCS_ERR_UNREACHABLE:
    case UCS_ERR_ENDPOINT_TIMEOUT:
    case UCS_ERR_CONNECTION_RESET:
    case UCS_ERR_CANCELED:
    case UCS_ERR_TIMED_OUT:
      return absl::UnavailableError(message);
    case UCS_ERR_NO_MEMORY:
    case UCS_ERR_NO_RESOURCE:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<std::unique_ptr<UcxContext>> UcxContext::Create() {
  std::unique_ptr<UcxContext> ucx(new UcxContext());
  ucp_params_t params = {};
  params.field_mask = UCP_PARAM_FIELD_FEATURES;
  // WAKEUP lets an idle progress thread sleep on the worker's event fd.
  params.features = UCP_FEATURE_RMA | UCP_FEATURE_WAKEUP;
  ucp_config_t* config = nullptr;
  if (ucs_status_t s = ucp_config_read(nullptr, nullptr, &config); s != UCS_OK) {
    return UcsError("reading the UCX configuration", s);
  }
  const ucs_status_t init = ucp_init(&params, config, &ucx->context_);
  ucp_config_release(config);
  if (init != UCS_OK) return UcsError("initialising UCX", init);
  ucp_worker_params_t worker_params = {};
  worker_params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  worker_params.thread_mode = UCS_THREAD_MODE_SINGLE;
  if (ucs_status_t s = ucp_worker_create(ucx->context_, &worker_params, &ucx->worker_); s != UCS_OK) {
    return UcsError("creating a UCX worker", s);
  }
  ucp_address_t* address = nullptr;
  size_t length = 0;
  if (ucs_status_t s = ucp_worker_get_address(ucx->worker_, &address, &length); s != UCS_OK) {
    return UcsError("getting the UCX worker address", s);
  }
  ucx->address_.assign(reinterpret_cast<const char*>(address), length);
  ucp_worker_release_address(ucx->worker_, address);
  return ucx;
}

UcxContext::~UcxContext() {
  if (worker_ != nullptr) ucp_worker_destroy(worker_);
  if (context_ != nullptr) ucp_cleanup(context_);
}

absl::Status UcxContext::Wait(std::vector<void*>& requests, absl::Duration timeout, const std::string& what) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status first = absl::OkStatus();
  size_t done = 0;
  while (done < requests.size()) {
    done = 0;
    for (void*& request : requests) {
      if (request == nullptr) {
        ++done;
        continue;
      }
      if (UCS_PTR_IS_ERR(request)) {
        if (first.ok()) first = UcsError(what, UCS_PTR_STATUS(request));
        request = nullptr;
        ++done;
        continue;
      }
      const ucs_status_t status = ucp_request_check_status(request);
      if (status == UCS_INPROGRESS) continue;
      if (status != UCS_OK && first.ok()) first = UcsError(what, status);
      ucp_request_free(request);
      request = nullptr;
      ++done;
    }
    if (done == requests.size()) break;
    if (absl::Now() > deadline) {
      // Not every transport can cancel an RMA request; free them as they are (UCX
      // allows that) and let the owner abandon this worker so they never complete.
      for (void*& request : requests) {
        if (request == nullptr) continue;
        ucp_request_cancel(worker_, request);
        ucp_request_free(request);
        request = nullptr;
      }
      return absl::DeadlineExceededError(absl::StrCat(
          what, ": no answer within ", absl::FormatDuration(timeout), "; the peer may be gone"));
    }
    ucp_worker_progress(worker_);
  }
  return first;
}

absl::StatusOr<std::unique_ptr<UcxMemory>> UcxMemory::Map(ucp_context_h context, void* address, size_t length) {
  ucp_mem_map_params_t params = {};
  params.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
  params.address = address;
  params.length = length;
  ucp_mem_h memh = nullptr;
  if (ucs_status_t s = ucp_mem_map(context, &params, &memh); s != UCS_OK) {
    return UcsError(absl::StrCat("registering ", length, " bytes with UCX"), s);
  }
  std::unique_ptr<UcxMemory> memory(new UcxMemory(context, memh));
  void* rkey = nullptr;
  size_t rkey_length = 0;
  if (ucs_status_t s = ucp_rkey_pack(context, memh, &rkey, &rkey_length); s != UCS_OK) {
    return UcsError("packing a UCX remote key", s);
  }
  memory->rkey_.assign(static_cast<const char*>(rkey), rkey_length);
  ucp_rkey_buffer_release(rkey);
  return memory;
}

UcxMemory::~UcxMemory() { ucp_mem_unmap(context_, memh_); }

void UcxEndpoint::OnError(void* self, ucp_ep_h, ucs_status_t) {
  static_cast<UcxEndpoint*>(self)->failed_ = true;
}

namespace {

// UCX logs an ERROR when it cannot give an endpoint peer-failure handling (its
// shared-memory transports), though the caller falls back to an endpoint without it:
// the first attempt runs with this filter, which drops that one message.
ucs_log_func_rc_t DropNoPeerFailureHandler(const char*, unsigned, const char*, ucs_log_level_t,
                                           const ucs_log_component_config_t*, const char* format, va_list ap) {
  char message[512];
  va_list copy;
  va_copy(copy, ap);
  std::vsnprintf(message, sizeof(message), format, copy);
  va_end(copy);
  return std::strstr(message, "no peer failure handler") != nullptr ? UCS_LOG_FUNC_RC_STOP
                                                                      : UCS_LOG_FUNC_RC_CONTINUE;
}

class ScopedUcxLogFilter {
 public:
  explicit ScopedUcxLogFilter(ucs_log_func_t filter) { ucs_log_push_handler(filter); }
  ~ScopedUcxLogFilter() { ucs_log_pop_handler(); }
  ScopedUcxLogFilter(const ScopedUcxLogFilter&) = delete;
  ScopedUcxLogFilter& operator=(const ScopedUcxLogFilter&) = delete;
};

}  // namespace

absl::StatusOr<std::unique_ptr<UcxEndpoint>> UcxEndpoint::Connect(UcxContext* context, const std::string& address) {
  std::unique_ptr<UcxEndpoint> endpoint(new UcxEndpoint());
  endpoint->context_ = context;
  ucp_ep_params_t params = {};
  params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER;
  params.address = reinterpret_cast<const ucp_address_t*>(address.data());
  // Peer failure handling: a daemon that vanishes fails requests instead of hanging.
  // Shared-memory transports (UCX 1.13) cannot do it; there the caller's timeout
  // (UcxContext::Wait) is what bounds a request to a vanished peer.
  params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  params.err_handler.cb = &UcxEndpoint::OnError;
  params.err_handler.arg = endpoint.get();
  {
    ScopedUcxLogFilter quiet(&DropNoPeerFailureHandler);
    if (ucp_ep_create(context->worker(), &params, &endpoint->ep_) == UCS_OK) return endpoint;
  }
  params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
  if (ucs_status_t s = ucp_ep_create(context->worker(), &params, &endpoint->ep_); s != UCS_OK) {
    return UcsError("connecting to the pool daemon's UCX worker", s);
  }
  return endpoint;
}

UcxEndpoint::~UcxEndpoint() {
  if (ep_ == nullptr) return;
  ucp_request_param_t params = {};
  params.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  params.flags = UCP_EP_CLOSE_FLAG_FORCE;
  std::vector<void*> requests = {ucp_ep_close_nbx(ep_, &params)};
  (void)context_->Wait(requests, absl::Seconds(2), "closing a UCX endpoint");
}

absl::StatusOr<std::unique_ptr<UcxRkey>> UcxRkey::Unpack(ucp_ep_h ep, const std::string& packed) {
  ucp_rkey_h rkey = nullptr;
  if (ucs_status_t s = ucp_ep_rkey_unpack(ep, packed.data(), &rkey); s != UCS_OK) {
    return UcsError("unpacking the region's UCX remote key", s);
  }
  return std::unique_ptr<UcxRkey>(new UcxRkey(rkey));
}

UcxRkey::~UcxRkey() { ucp_rkey_destroy(rkey_); }

}  // namespace sparsepool
