// libFuzzer: what anyone who reaches the metrics port sends (service/metrics_http.h).
// Any head is InvalidArgument or a path that starts with '/' and holds no query or
// space.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "service/metrics_http.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string head(reinterpret_cast<const char*>(data), size);
  auto path = sparsepool::ParseGetRequest(head);
  if (!path.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(path.status()));
    return 0;
  }
  FUZZ_CHECK(!path->empty() && (*path)[0] == '/');
  FUZZ_CHECK(path->find('?') == std::string::npos && path->find(' ') == std::string::npos);
  return 0;
}
