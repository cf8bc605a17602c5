#include "common/log.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace sparsepool {
namespace {

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarning: return "WARNING";
    case LogLevel::kError: return "ERROR";
  }
  return "?";
}

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  if (name == "info") return LogLevel::kInfo;
  if (name == "warning") return LogLevel::kWarning;
  if (name == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(absl::StrCat("log level \"", Quoted(name, 16), "\" is not info, warning or error"));
}

std::string Quoted(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return absl::CEscape(text);
  return absl::StrCat(absl::CEscape(text.substr(0, max_bytes)), "...(", text.size(), " bytes)");
}

Logger::Logger(LogOptions options) : options_(std::move(options)) {}

Logger::~Logger() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = Now();
  for (auto& [kind, window] : windows_) Close(kind, window, now);
}

absl::Time Logger::Now() const { return options_.now ? options_.now() : absl::Now(); }

void Logger::Log(LogLevel level, absl::string_view message) {
  absl::MutexLock lock(&mu_);
  Write(level, message);
}

void Logger::Limited(LogLevel level, absl::string_view kind, absl::string_view message) {
  if (level < options_.min_level) return;
  absl::MutexLock lock(&mu_);
  const absl::Time now = Now();
  auto [it, fresh] = windows_.try_emplace(std::string(kind));
  Window& window = it->second;
  if (fresh) window.start = now;
  if (now - window.start >= options_.window) Close(it->first, window, now);
  window.level = std::max(window.level, level);
  if (window.written < options_.burst) {
    ++window.written;
    Write(level, message);
  } else {
    ++window.suppressed;
  }
}

void Logger::Flush() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = Now();
  for (auto& [kind, window] : windows_) {
    if (now - window.start >= options_.window) Close(kind, window, now);
  }
}

void Logger::Close(const std::string& kind, Window& window, absl::Time now) {
  if (window.suppressed > 0) {
    Write(window.level, absl::StrCat(kind, ": ", window.suppressed, " more in the last ",
                                     absl::FormatDuration(absl::Trunc(now - window.start, absl::Seconds(1))),
                                     ", not logged one by one"));
  }
  window = Window{now, 0, 0, LogLevel::kInfo};
}

void Logger::Write(LogLevel level, absl::string_view message) {
  if (level < options_.min_level) return;
  const absl::Time now = Now();
  const std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3S", now, absl::LocalTimeZone()), " ", options_.program, "[",
                   getpid(), "] ", level == LogLevel::kInfo ? "" : absl::StrCat(LevelName(level), ": "), message, "\n");
  if (options_.sink) {
    options_.sink(line);
  } else {
    std::fputs(line.c_str(), stderr);
  }
}

}  // namespace sparsepool
