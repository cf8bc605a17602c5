#include "transport/rdma/verbs_device.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sparsepool {

absl::StatusOr<std::unique_ptr<VerbsDevice>> VerbsDevice::Open(const std::string& name) {
  int count = 0;
  ibv_device** devices = ibv_get_device_list(&count);
  if (devices == nullptr || count == 0) {
    if (devices != nullptr) ibv_free_device_list(devices);
    return absl::FailedPreconditionError(
        "no RDMA device: libibverbs lists none on this host; use transport \"ucx\" (tcp or sm) "
        "or \"cxl\"");
  }
  ibv_device* chosen = nullptr;
  std::string available;
  for (int i = 0; i < count; ++i) {
    const char* device_name = ibv_get_device_name(devices[i]);
    absl::StrAppend(&available, i == 0 ? "" : ", ", device_name);
    if (name.empty() ? chosen == nullptr : name == device_name) chosen = devices[i];
  }
  if (chosen == nullptr) {
    ibv_free_device_list(devices);
    return absl::NotFoundError(absl::StrCat("no RDMA device named ", name, " (available: ", available, ")"));
  }
  const std::string chosen_name = ibv_get_device_name(chosen);
  ibv_context* context = ibv_open_device(chosen);
  const int err = errno;
  ibv_free_device_list(devices);
  if (context == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot open RDMA device ", chosen_name, ": ", std::strerror(err)));
  }
  return std::unique_ptr<VerbsDevice>(new VerbsDevice(context, chosen_name));
}

VerbsDevice::~VerbsDevice() { ibv_close_device(context_); }

}  // namespace sparsepool
