// sparsepoold's command line: Abseil flags (daemon_flags.cc defines them, so --help
// lists them with their types and defaults), --flagfile, and the KEY = VALUE config
// file the daemon has always read (--config; deploy/*.conf), whose keys are the flags'
// names. Read into a DaemonConfig (daemon_config.h).
#ifndef SPARSEPOOL_SERVICE_DAEMON_FLAGS_H_
#define SPARSEPOOL_SERVICE_DAEMON_FLAGS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/daemon_config.h"

namespace sparsepool {

// Reads --config's file first, then every flag of the command line (they win over the
// file; a --region given there replaces the file's regions, and repeated --region flags
// add up), then checks the whole (CheckDaemonConfig). Exits after --help, or with a
// message after a malformed flag (common/command_line.h); a bad config file or a
// setting out of range comes back as a status.
absl::StatusOr<DaemonConfig> ParseDaemonCommandLine(int argc, char** argv);

// Applies config-file text to the daemon's flags: each line's KEY must name one of
// them and its VALUE parse as the flag's type; `region` lines add up (the first one
// replaces the regions set before). Errors name source:line. For tests and fuzzing.
absl::Status ApplyConfigText(absl::string_view text, absl::string_view source);

// The daemon's flags as they stand, read into a config and checked.
absl::StatusOr<DaemonConfig> DaemonConfigFromFlags();

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_DAEMON_FLAGS_H_
