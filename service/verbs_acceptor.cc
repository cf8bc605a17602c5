#include "service/verbs_acceptor.h"

#include <algorithm>

namespace sparsepool {

absl::StatusOr<std::unique_ptr<VerbsAcceptor>> VerbsAcceptor::Create(const VerbsOptions& options,
                                                                     const std::vector<PublishedRegion>& regions) {
  auto device = VerbsDevice::Open(options.device);
  if (!device.ok()) return device.status();
  auto pd = AllocateProtectionDomain(**device);
  if (!pd.ok()) return pd.status();
  std::unique_ptr<VerbsAcceptor> acceptor(new VerbsAcceptor(options));
  acceptor->device_ = *std::move(device);
  acceptor->pd_ = *std::move(pd);
  acceptor->regions_ = regions;
  for (const PublishedRegion& region : regions) {
    auto mr = RegisterMemory(acceptor->pd_.get(), region.base, region.bytes,
                             IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE);
    if (!mr.ok()) return mr.status();
    acceptor->registrations_.push_back(*std::move(mr));
  }
  return acceptor;
}

void VerbsAcceptor::Annotate(RegionRef& ref) const {
  if (ref.index >= registrations_.size()) return;
  ref.verbs_rkey = registrations_[ref.index]->rkey;
  ref.remote_base = reinterpret_cast<uint64_t>(regions_[ref.index].base);
}

absl::StatusOr<VerbsPeerInfo> VerbsAcceptor::Accept(const std::string& client_id, const VerbsPeerInfo& client) {
  QueuePairOptions qp_options;
  qp_options.port = options_.port;
  qp_options.gid_index = options_.gid_index;
  qp_options.max_send_wr = 16;  // the daemon only answers READs and WRITEs
  auto qp = RcQueuePair::Create(*device_, pd_.get(), qp_options);
  if (!qp.ok()) return qp.status();
  const uint32_t mtu = std::min(client.mtu_bytes, (*qp)->mtu_bytes());
  if (absl::Status s = (*qp)->Connect(client.endpoint, mtu); !s.ok()) return s;
  VerbsPeerInfo ours{(*qp)->local(), mtu};
  absl::MutexLock lock(&mu_);
  clients_[client_id] = *std::move(qp);  // a reconnecting client's old queue pair goes
  return ours;
}

void VerbsAcceptor::Forget(const std::string& client_id) {
  absl::MutexLock lock(&mu_);
  clients_.erase(client_id);
}

}  // namespace sparsepool
