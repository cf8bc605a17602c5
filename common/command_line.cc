#include "common/command_line.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/base/call_once.h"
#include "absl/flags/internal/parse.h"
#include "absl/flags/internal/program_name.h"
#include "absl/flags/internal/usage.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sparsepool {
namespace {

// --help shows the flags of this project's files wherever they are defined (a binary's
// flags may live beside the code that reads them), not Abseil's own.
bool OursNotAbseils(absl::string_view path) { return !absl::StrContains(path, "absl/"); }

}  // namespace

std::vector<std::string> ParseCommandLine(int argc, char** argv, absl::string_view usage) {
  absl::FlagsUsageConfig config;
  config.contains_help_flags = OursNotAbseils;
  config.contains_helpshort_flags = OursNotAbseils;
  config.contains_helppackage_flags = OursNotAbseils;
  absl::SetFlagsUsageConfig(config);
  // Abseil takes the usage message once per process (a second call is fatal); a test
  // may parse several command lines.
  static absl::once_flag usage_set;
  absl::call_once(usage_set, [usage] { absl::SetProgramUsageMessage(usage); });
  // Abseil's parser reports a bad flag on stderr and exits 1 itself; usage flags are
  // left to us so that --help exits 0.
  std::vector<char*> rest = absl::flags_internal::ParseCommandLineImpl(
      argc, argv, absl::flags_internal::ArgvListAction::kRemoveParsedArgs,
      absl::flags_internal::UsageFlagsAction::kIgnoreUsage,
      absl::flags_internal::OnUndefinedFlag::kAbortIfUndefined);
  const int usage_exit = absl::flags_internal::HandleUsageFlags(std::cout, absl::ProgramUsageMessage());
  if (usage_exit != -1) {
    std::cout.flush();
    std::exit(0);
  }
  return std::vector<std::string>(rest.begin() + 1, rest.end());
}

void ParseFlagsOnly(int argc, char** argv, absl::string_view usage) {
  const std::vector<std::string> positional = ParseCommandLine(argc, argv, usage);
  if (positional.empty()) return;
  std::fprintf(stderr, "%s: unexpected argument \"%s\" (flags are --name=value; --help lists them)\n",
               argc > 0 ? argv[0] : "sparsepool", positional[0].c_str());
  std::exit(2);
}

int RefuseFlagValue(absl::string_view flag, absl::string_view value, absl::string_view why) {
  std::fprintf(stderr, "%s: bad argument --%s=%s: %s (--help lists the flags)\n",
               absl::flags_internal::ShortProgramInvocationName().c_str(), std::string(flag).c_str(),
               std::string(value).c_str(), std::string(why).c_str());
  return 2;
}

}  // namespace sparsepool
