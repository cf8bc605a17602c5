// libFuzzer: the daemon's config text and region specs (service/daemon_flags.h,
// transport/cxl/region_spec.h). Any text is InvalidArgument or a config whose regions
// all have a path and, but for device-DAX, a size.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/flags/reflection.h"
#include "service/daemon_config.h"
#include "service/daemon_flags.h"
#include "tests/fuzz/fuzz_check.h"
#include "transport/cxl/region_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  {
    absl::FlagSaver restore;  // every input starts from the flags' defaults
    const absl::Status applied = sparsepool::ApplyConfigText(text, "fuzz");
    FUZZ_CHECK(applied.ok() || absl::IsInvalidArgument(applied));
    if (applied.ok()) {
      absl::StatusOr<sparsepool::DaemonConfig> config = sparsepool::DaemonConfigFromFlags();
      FUZZ_CHECK(config.ok() || absl::IsInvalidArgument(config.status()));
      if (config.ok()) {
        FUZZ_CHECK(!config->regions.empty());
        for (const sparsepool::RegionSpec& spec : config->regions) FUZZ_CHECK(!spec.path.empty());
      }
    }
  }
  auto spec = sparsepool::ParseRegionSpec(text);
  FUZZ_CHECK(spec.ok() || absl::IsInvalidArgument(spec.status()));
  if (spec.ok()) {
    FUZZ_CHECK(!spec->path.empty());
    FUZZ_CHECK(spec->kind == sparsepool::RegionKind::kDevdax || spec->size_bytes > 0);
  }
  return 0;
}
