// A client for tests that talk to a real daemon: connected with a short RPC deadline, or
// null after an EXPECT failure naming why.
#ifndef SPARSEPOOL_TESTS_CLIENT_SUPPORT_H_
#define SPARSEPOOL_TESTS_CLIENT_SUPPORT_H_

#include <memory>
#include <string>

#include "client/sparsepool_client.h"
#include "gtest/gtest.h"

namespace sparsepool::testing {

inline std::unique_ptr<Client> ConnectTo(const std::string& address) {
  ClientOptions options;
  options.address = address;
  options.rpc_timeout = absl::Seconds(5);
  auto client = Client::Connect(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

}  // namespace sparsepool::testing

#endif  // SPARSEPOOL_TESTS_CLIENT_SUPPORT_H_
