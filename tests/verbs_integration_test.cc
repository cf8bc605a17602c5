// The libibverbs transport against a real sparsepoold, on a host without an RDMA device
// (this project's machines): every way of asking for it ends in a clear error that says
// what is missing, and nothing else is disturbed. With a device, the daemon starts and
// the client connects; the round trips then run in transport_test's body (not yet run
// on RDMA hardware).
#include <grpcpp/grpcpp.h>

#include "client/sparsepool_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/sparsepool.grpc.pb.h"
#include "tests/daemon_process.h"
#include "transport/rdma/verbs_device.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;

bool HostHasRdmaDevice() { return VerbsDevice::Open("").ok(); }

TEST(VerbsIntegrationTest, DaemonAskedForVerbsWithoutADeviceRefusesToStartAndSaysWhy) {
  if (HostHasRdmaDevice()) GTEST_SKIP() << "this host has an RDMA device";
  testing::DaemonOptions options;
  options.extra_args = {"--verbs=true"};
  testing::DaemonProcess daemon("verbs_no_device", options);
  const absl::Status started = daemon.Start();
  ASSERT_FALSE(started.ok());
  EXPECT_THAT(std::string(started.message()), HasSubstr("cannot serve regions over libibverbs"));
  EXPECT_THAT(std::string(started.message()), HasSubstr("no RDMA device"));
}

TEST(VerbsIntegrationTest, ConnectVerbsOnADaemonWithoutVerbsIsFailedPrecondition) {
  testing::DaemonProcess daemon("verbs_not_served");
  ASSERT_TRUE(daemon.Start().ok()) << daemon.Log();
  auto stub = v1::PoolService::NewStub(grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
  v1::ConnectVerbsRequest request;
  request.set_client_id("verbs-test");
  request.mutable_endpoint()->set_qp_number(77);
  request.mutable_endpoint()->set_gid(std::string(16, '\0'));
  request.mutable_endpoint()->set_mtu(4096);
  v1::ConnectVerbsResponse response;
  grpc::ClientContext context;
  const grpc::Status status = stub->ConnectVerbs(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("start sparsepoold with --verbs=true"));
  // The daemon goes on serving the other transports.
  ClientOptions options;
  options.address = daemon.address();
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  SequenceSpec spec;
  spec.layers = 1;
  spec.entry_bytes = 656;
  spec.tokens = 10;
  EXPECT_TRUE((*client)->CreateSequence(spec).ok());
}

TEST(VerbsIntegrationTest, ClientAskingForVerbsWithoutADeviceGetsFailedPrecondition) {
  if (HostHasRdmaDevice()) GTEST_SKIP() << "this host has an RDMA device";
  testing::DaemonProcess daemon("verbs_client");
  ASSERT_TRUE(daemon.Start().ok()) << daemon.Log();
  ClientOptions options;
  options.address = daemon.address();
  options.transport = "verbs";
  auto client = Client::Connect(options);
  EXPECT_TRUE(absl::IsFailedPrecondition(client.status())) << client.status();
  EXPECT_THAT(std::string(client.status().message()), HasSubstr("no RDMA device"));
  options.transport = "carrier-pigeon";
  EXPECT_THAT(std::string(Client::Connect(options).status().message()),
              HasSubstr("unknown transport \"carrier-pigeon\" (available: cxl, ucx, verbs)"));
}

}  // namespace
}  // namespace sparsepool
