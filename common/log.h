// The daemon's log: timestamped lines with a level, on stderr by default.
//
// Events a client can cause in bulk (leases expiring, calls refused) go through
// Limited(): at most `burst` lines of one kind per `window`, the rest counted and
// summarised in one line when the window ends, so that a flood of a thousand clients
// costs a handful of lines, not a thousand. Strings a client chose (client ids, tenant
// names, paths it sent) are written through Quoted(): escaped and cut to a bound, so a
// hostile one can neither forge lines nor grow the log.
//
// Thread-safe.
#ifndef SPARSEPOOL_COMMON_LOG_H_
#define SPARSEPOOL_COMMON_LOG_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sparsepool {

enum class LogLevel { kInfo = 0, kWarning = 1, kError = 2 };

// "info", "warning", "error"; InvalidArgument naming the choices otherwise.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);

// `text` escaped (C escapes: no newline or control byte survives) and cut to
// `max_bytes` of the original, saying how long it was.
std::string Quoted(absl::string_view text, size_t max_bytes = 64);

struct LogOptions {
  std::string program = "sparsepoold";
  LogLevel min_level = LogLevel::kInfo;
  // Lines of one kind written per window before the rest are only counted.
  int burst = 5;
  absl::Duration window = absl::Seconds(10);
  // Where lines go (each ends in '\n'), and the time; stderr and the wall clock when
  // empty (tests capture both).
  std::function<void(absl::string_view line)> sink;
  std::function<absl::Time()> now;
};

class Logger {
 public:
  explicit Logger(LogOptions options = {});
  ~Logger();  // writes what Flush() would
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  void Log(LogLevel level, absl::string_view message);
  void Info(absl::string_view message) { Log(LogLevel::kInfo, message); }
  void Warning(absl::string_view message) { Log(LogLevel::kWarning, message); }
  void Error(absl::string_view message) { Log(LogLevel::kError, message); }

  // A line of `kind` (a fixed name: "lease expired"), rate-limited as above.
  void Limited(LogLevel level, absl::string_view kind, absl::string_view message);
  // Ends every window that has run out, writing its summary; call it now and then
  // (the daemon does, from its lease reaper) so that a flood's summary is not held
  // back until the next event of its kind.
  void Flush();

 private:
  struct Window {
    absl::Time start;
    int written = 0;
    uint64_t suppressed = 0;
    LogLevel level = LogLevel::kInfo;
  };
  absl::Time Now() const;
  void Write(LogLevel level, absl::string_view message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the summary of `kind`'s window if it suppressed anything, and resets it.
  void Close(const std::string& kind, Window& window, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const LogOptions options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Window> windows_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_LOG_H_
