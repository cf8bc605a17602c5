// libFuzzer: the daemon's config text and region specs (service/daemon_config.h,
// transport/cxl/region_spec.h). Any text is InvalidArgument or a config whose regions
// all have a path and, but for device-DAX, a size.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "service/daemon_config.h"
#include "tests/fuzz/fuzz_check.h"
#include "transport/cxl/region_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  sparsepool::DaemonConfig config;
  const absl::Status applied = sparsepool::ApplyConfigText(text, "fuzz", config);
  FUZZ_CHECK(applied.ok() || absl::IsInvalidArgument(applied));
  for (const sparsepool::RegionSpec& spec : config.regions) FUZZ_CHECK(!spec.path.empty());
  auto spec = sparsepool::ParseRegionSpec(text);
  FUZZ_CHECK(spec.ok() || absl::IsInvalidArgument(spec.status()));
  if (spec.ok()) {
    FUZZ_CHECK(!spec->path.empty());
    FUZZ_CHECK(spec->kind == sparsepool::RegionKind::kDevdax || spec->size_bytes > 0);
  }
  return 0;
}
