// A bare HTTP/1.0 exchange with a server on this host, for tests of the metrics
// endpoint: sends `request` as given on a fresh connection and returns all it answers.
#ifndef SPARSEPOOL_TESTS_LOCAL_HTTP_H_
#define SPARSEPOOL_TESTS_LOCAL_HTTP_H_

#include <string>

#include "absl/strings/string_view.h"
#include "common/scoped_fd.h"

namespace sparsepool::testing {

// A connection to 127.0.0.1:port (invalid if it cannot connect).
ScopedFd ConnectLocal(int port);
std::string AskLocal(int port, absl::string_view request);

}  // namespace sparsepool::testing

#endif  // SPARSEPOOL_TESTS_LOCAL_HTTP_H_
