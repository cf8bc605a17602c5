#include "service/ucx_publisher.h"

#include <poll.h>

namespace sparsepool {

absl::StatusOr<std::unique_ptr<UcxPublisher>> UcxPublisher::Create(const std::vector<PublishedRegion>& regions) {
  std::unique_ptr<UcxPublisher> publisher(new UcxPublisher());
  auto ucx = UcxContext::Create();
  if (!ucx.ok()) return ucx.status();
  publisher->ucx_ = *std::move(ucx);
  for (const PublishedRegion& region : regions) {
    auto memory = UcxMemory::Map(publisher->ucx_->context(), region.base, region.bytes);
    if (!memory.ok()) return memory.status();
    publisher->memory_.push_back(*std::move(memory));
  }
  publisher->regions_ = regions;
  publisher->progress_ = std::thread([p = publisher.get()] { p->Progress(); });
  return publisher;
}

UcxPublisher::~UcxPublisher() {
  stop_ = true;
  if (progress_.joinable()) progress_.join();
  memory_.clear();
}

void UcxPublisher::Annotate(RegionRef& ref) const {
  if (ref.index >= regions_.size()) return;
  ref.ucx_worker_address = ucx_->worker_address();
  ref.ucx_rkey = memory_[ref.index]->packed_rkey();
  ref.remote_base = reinterpret_cast<uint64_t>(regions_[ref.index].base);
}

void UcxPublisher::Progress() {
  // Only this thread touches the worker after creation. Sleep on the worker's event fd
  // when idle, waking at least every 10 ms to notice stop_.
  int fd = -1;
  const bool have_fd = ucp_worker_get_efd(ucx_->worker(), &fd) == UCS_OK;
  while (!stop_.load()) {
    if (ucx_->Progress()) continue;
    if (have_fd && ucp_worker_arm(ucx_->worker()) == UCS_OK) {
      pollfd wait{fd, POLLIN, 0};
      poll(&wait, 1, 10);
    }
  }
}

}  // namespace sparsepool
