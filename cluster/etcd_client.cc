#include "cluster/etcd_client.h"

#include <grpcpp/grpcpp.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace sparsepool::cluster {
namespace {

// The smallest key greater than every key that starts with `prefix` (etcd's range_end).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<unsigned char>(prefix.back()) < 0xff) {
      prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // every key
}

EtcdKeyValue FromProto(const mvccpb::KeyValue& kv) {
  return EtcdKeyValue{kv.key(), kv.value(), kv.lease(), kv.mod_revision()};
}

}  // namespace

struct EtcdClient::Stubs {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
};

EtcdClient::EtcdClient(std::string endpoints, absl::Duration timeout, std::unique_ptr<Stubs> stubs)
    : endpoints_(std::move(endpoints)), timeout_(timeout), stubs_(std::move(stubs)) {}
EtcdClient::~EtcdClient() = default;

const std::string& EtcdClient::endpoints() const { return endpoints_; }

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Connect(const std::string& endpoints,
                                                                 absl::Duration timeout) {
  if (endpoints.empty()) return absl::InvalidArgumentError("no etcd endpoints given");
  auto stubs = std::make_unique<Stubs>();
  // Several endpoints: one channel over all of them, tried in turn.
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("pick_first");
  // Calls fail fast while etcd is away; reconnect soon after it is back, well within a
  // lease (gRPC's default backoff grows to two minutes).
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  stubs->channel = grpc::CreateCustomChannel(absl::StrCat("ipv4:", endpoints), grpc::InsecureChannelCredentials(),
                                             args);
  stubs->kv = etcdserverpb::KV::NewStub(stubs->channel);
  stubs->lease = etcdserverpb::Lease::NewStub(stubs->channel);
  std::unique_ptr<EtcdClient> client(new EtcdClient(endpoints, timeout, std::move(stubs)));
  if (auto probe = client->Get("/"); !probe.ok()) return probe.status();
  return client;
}

namespace {

absl::Status ToStatus(const grpc::Status& s, const std::string& endpoints, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat("etcd at ", endpoints, ", ", what, ": ", s.error_message());
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::UnavailableError(absl::StrCat(message, " (is etcd running and reachable?)"));
    case grpc::StatusCode::NOT_FOUND:
      return absl::NotFoundError(message);
    case grpc::StatusCode::INVALID_ARGUMENT:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

// Every call: the client's deadline, and failing at once while etcd is unreachable
// rather than waiting for it to come back.
void Prepare(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  context.set_wait_for_ready(false);
}

}  // namespace

absl::StatusOr<int64_t> EtcdClient::GrantLease(absl::Duration ttl) {
  grpc::ClientContext context;
  Prepare(context, timeout_);
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(std::max<int64_t>(1, absl::ToInt64Seconds(ttl)));
  etcdserverpb::LeaseGrantResponse response;
  if (absl::Status s = ToStatus(stubs_->lease->LeaseGrant(&context, request, &response), endpoints_, "granting a lease");
      !s.ok()) {
    return s;
  }
  if (!response.error().empty()) return absl::InternalError(absl::StrCat("etcd refused a lease: ", response.error()));
  return response.id();
}

absl::Status EtcdClient::KeepAlive(int64_t lease) {
  grpc::ClientContext context;
  Prepare(context, timeout_);
  auto stream = stubs_->lease->LeaseKeepAlive(&context);
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(lease);
  etcdserverpb::LeaseKeepAliveResponse response;
  if (!stream->Write(request) || !stream->Read(&response)) {
    stream->WritesDone();
    return ToStatus(stream->Finish(), endpoints_, "renewing a lease");
  }
  stream->WritesDone();
  context.TryCancel();  // one renewal per stream: do not wait for etcd to close it
  if (response.ttl() <= 0) return absl::NotFoundError(absl::StrCat("etcd lease ", lease, " has expired"));
  return absl::OkStatus();
}

absl::Status EtcdClient::RevokeLease(int64_t lease) {
  grpc::ClientContext context;
  Prepare(context, timeout_);
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(lease);
  etcdserverpb::LeaseRevokeResponse response;
  return ToStatus(stubs_->lease->LeaseRevoke(&context, request, &response), endpoints_, "revoking a lease");
}

absl::Status EtcdClient::Put(const std::string& key, const std::string& value, int64_t lease) {
  grpc::ClientContext context;
  Prepare(context, timeout_);
  etcdserverpb::PutRequest request;
  request.set_key(key);
  request.set_value(value);
  request.set_lease(lease);
  etcdserverpb::PutResponse response;
  return ToStatus(stubs_->kv->Put(&context, request, &response), endpoints_, absl::StrCat("putting ", key));
}

absl::StatusOr<std::optional<EtcdKeyValue>> EtcdClient::PutIfAbsent(const std::string& key, const std::string& value,
                                                                    int64_t lease) {
  grpc::ClientContext context;
  Prepare(context, timeout_);
  etcdserverpb::TxnRequest txn;
  etcdserverpb::Compare* absent = txn.add_compare();
  absent->set_key(key);
  absent->set_target(etcdserverpb::Compare::CREATE);
  absent->set_result(etcdserverpb::Compare::EQUAL);
  absent->set_create_revision(0);
  etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  put->set_lease(lease);
  txn.add_failure()->mutable_request_range()->set_key(key);
  etcdserverpb::TxnResponse response;
  if (absl::Status s = ToStatus(stubs_->kv->Txn(&context, txn, &response), endpoints_, absl::StrCat("claiming ", key));
      !s.ok()) {
    return s;
  }
  if (response.succeeded()) return std::optional<EtcdKeyValue>();
  const auto& range = response.responses(0).response_range();
  if (range.kvs_size() == 0) {
    return absl::AbortedError(absl::StrCat(key, " was claimed and released while it was being claimed; try again"));
  }
  return std::optional<EtcdKeyValue>(FromProto(range.kvs(0)));
}

absl::StatusOr<bool> EtcdClient::DeleteIfLease(const std::string& key, int64_t lease) {
  grpc::ClientContext context;
  Prepare(context, timeout_);
  etcdserverpb::TxnRequest txn;
  etcdserverpb::Compare* held = txn.add_compare();
  held->set_key(key);
  held->set_target(etcdserverpb::Compare::LEASE);
  held->set_result(etcdserverpb::Compare::EQUAL);
  held->set_lease(lease);
  txn.add_success()->mutable_request_delete_range()->set_key(key);
  etcdserverpb::TxnResponse response;
  if (absl::Status s = ToStatus(stubs_->kv->Txn(&context, txn, &response), endpoints_, absl::StrCat("deleting ", key));
      !s.ok()) {
    return s;
  }
  return response.succeeded();
}

absl::StatusOr<std::optional<EtcdKeyValue>> EtcdClient::Get(const std::string& key) {
  grpc::ClientContext context;
  Prepare(context, timeout_);
  etcdserverpb::RangeRequest request;
  request.set_key(key);
  etcdserverpb::RangeResponse response;
  if (absl::Status s = ToStatus(stubs_->kv->Range(&context, request, &response), endpoints_,
                                absl::StrCat("reading ", key));
      !s.ok()) {
    return s;
  }
  if (response.kvs_size() == 0) return std::optional<EtcdKeyValue>();
  return std::optional<EtcdKeyValue>(FromProto(response.kvs(0)));
}

absl::StatusOr<std::vector<EtcdKeyValue>> EtcdClient::GetPrefix(const std::string& prefix) {
  grpc::ClientContext context;
  Prepare(context, timeout_);
  etcdserverpb::RangeRequest request;
  request.set_key(prefix);
  request.set_range_end(PrefixEnd(prefix));
  etcdserverpb::RangeResponse response;
  if (absl::Status s = ToStatus(stubs_->kv->Range(&context, request, &response), endpoints_,
                                absl::StrCat("reading ", prefix, "*"));
      !s.ok()) {
    return s;
  }
  std::vector<EtcdKeyValue> out;
  for (const auto& kv : response.kvs()) out.push_back(FromProto(kv));
  return out;
}

absl::Status EtcdClient::Delete(const std::string& key) {
  grpc::ClientContext context;
  Prepare(context, timeout_);
  etcdserverpb::DeleteRangeRequest request;
  request.set_key(key);
  etcdserverpb::DeleteRangeResponse response;
  return ToStatus(stubs_->kv->DeleteRange(&context, request, &response), endpoints_, absl::StrCat("deleting ", key));
}

}  // namespace sparsepool::cluster
