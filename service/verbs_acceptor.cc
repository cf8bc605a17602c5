#include "service/verbs_acceptor.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace sparsepool {

absl::StatusOr<std::unique_ptr<VerbsAcceptor>> VerbsAcceptor::Create(
    const VerbsOptions& options, const std::vector<PublishedRegion>& regions,
    const std::vector<std::vector<uint32_t>>& domains) {
  auto device = VerbsDevice::Open(options.device);
  if (!device.ok()) return device.status();
  std::unique_ptr<VerbsAcceptor> acceptor(new VerbsAcceptor(options));
  acceptor->device_ = *std::move(device);
  acceptor->regions_ = regions;
  for (const std::vector<uint32_t>& members : domains) {
    auto pd = AllocateProtectionDomain(*acceptor->device_);
    if (!pd.ok()) return pd.status();
    Domain domain{*std::move(pd), {}};
    for (uint32_t index : members) {
      if (index >= regions.size()) {
        return absl::InvalidArgumentError(absl::StrCat("a domain names region ", index, " of ", regions.size()));
      }
      auto mr = RegisterMemory(domain.pd.get(), regions[index].base, regions[index].bytes,
                               IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE);
      if (!mr.ok()) return mr.status();
      domain.registrations.emplace(index, *std::move(mr));
    }
    acceptor->domains_.push_back(std::move(domain));
  }
  return acceptor;
}

void VerbsAcceptor::Annotate(RegionRef& ref, size_t domain) const {
  if (domain >= domains_.size()) return;
  auto it = domains_[domain].registrations.find(ref.index);
  if (it == domains_[domain].registrations.end()) return;
  ref.verbs_rkey = it->second->rkey;
  ref.remote_base = reinterpret_cast<uint64_t>(regions_[ref.index].base);
}

absl::StatusOr<VerbsPeerInfo> VerbsAcceptor::Accept(const std::string& client_id, size_t domain,
                                                    const VerbsPeerInfo& client) {
  if (domain >= domains_.size()) {
    return absl::FailedPreconditionError(absl::StrCat("client \"", client_id, "\" has no regions to reach"));
  }
  QueuePairOptions qp_options;
  qp_options.port = options_.port;
  qp_options.gid_index = options_.gid_index;
  qp_options.max_send_wr = 16;  // the daemon only answers READs and WRITEs
  auto qp = RcQueuePair::Create(*device_, domains_[domain].pd.get(), qp_options);
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
