// libFuzzer: the tenants file (service/tenants.h). Any text is an error or a directory
// whose entries have names of 1 to 63 bytes, each name and token once, and no token
// that is empty authenticates.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "common/layout.h"
#include "service/tenants.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto directory = sparsepool::TenantDirectory::Parse(text, "fuzz");
  if (!directory.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(directory.status()));
    return 0;
  }
  FUZZ_CHECK(!directory->entries().empty());
  std::set<std::string> names;
  std::set<sparsepool::TokenHash> hashes;
  for (const sparsepool::Tenant& entry : directory->entries()) {
    FUZZ_CHECK(!entry.name.empty() && entry.name.size() <= sparsepool::kMaxNameBytes);
    FUZZ_CHECK(names.insert(entry.name).second);
    FUZZ_CHECK(hashes.insert(entry.token_sha256).second);
    FUZZ_CHECK(!entry.is_operator || (entry.max_bytes == 0 && entry.max_sequences == 0));
  }
  FUZZ_CHECK(!directory->Authenticate("").ok());
  return 0;
}
