// A client for tests that talk to a real daemon: connected with a short RPC deadline, or
// null after an EXPECT failure naming why.
#ifndef SPARSEPOOL_TESTS_CLIENT_SUPPORT_H_
#define SPARSEPOOL_TESTS_CLIENT_SUPPORT_H_

#include <memory>
#include <string>

#include "client/sparsepool_client.h"
#include "gtest/gtest.h"

namespace sparsepool::testing {

// `fenced` false: no lease loop, so the daemon's reuse grace, not the release fence,
// keeps this client's writes out of reused memory.
inline std::unique_ptr<Client> ConnectTo(const std::string& address, bool fenced = true) {
  ClientOptions options;
  options.address = address;
  if (!fenced) options.keepalive_interval = absl::ZeroDuration();
  options.rpc_timeout = absl::Seconds(5);
  auto client = Client::Connect(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

}  // namespace sparsepool::testing

#endif  // SPARSEPOOL_TESTS_CLIENT_SUPPORT_H_
