#include "bench/load_processes.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/load_network.h"
#include "common/file_text.h"

extern char** environ;

namespace sparsepool::bench {

namespace {
// Our environment with `extra` (NAME=VALUE) replacing or adding entries.
std::vector<std::string> EnvironmentWith(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const absl::string_view entry(*e);
    const bool replaced = std::any_of(extra.begin(), extra.end(), [entry](const std::string& x) {
      return absl::StartsWith(entry, x.substr(0, x.find('=') + 1));
    });
    if (!replaced) env.emplace_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char*> NullTerminated(std::vector<std::string>& strings) {
  std::vector<char*> raw;
  for (std::string& s : strings) raw.push_back(s.data());
  raw.push_back(nullptr);
  return raw;
}
}  // namespace

absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  for (const std::string& entry : options.env) {
    // One without '=' would match, and so drop, every variable of ours.
    if (entry.find('=') == std::string::npos || entry.front() == '=') {
      return absl::InvalidArgumentError(absl::StrCat("environment entry \"", entry, "\" for ", argv[0],
                                                     " is not NAME=VALUE"));
    }
  }
  std::vector<std::string> args = argv;
  std::vector<std::string> env = EnvironmentWith(options.env);
  std::vector<char*> raw_args = NullTerminated(args);
  std::vector<char*> raw_env = NullTerminated(env);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!options.log_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  }
  if (!options.stdin_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, options.stdin_path.c_str(), O_RDONLY, 0);
  }
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  if (options.default_signals) {
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  pid_t pid = 0;
  // posix_spawnp: a name without a slash is looked up on PATH, a path is taken as is.
  const int error = posix_spawnp(&pid, raw_args[0], &actions, &attributes, raw_args.data(), raw_env.data());
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) return absl::InternalError(absl::StrCat("cannot start ", argv[0], ": ", std::strerror(error)));
  return pid;
}

absl::Status RunToCompletion(const std::vector<std::string>& argv, const SpawnOptions& options,
                             absl::Duration timeout) {
  absl::StatusOr<pid_t> pid = Spawn(argv, options);
  if (!pid.ok()) return pid.status();
  std::string command;
  for (const std::string& arg : argv) absl::StrAppend(&command, command.empty() ? "" : " ", arg);
  int status = 0;
  pid_t waited = -1;
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    waited = waitpid(*pid, &status, timeout == absl::InfiniteDuration() ? 0 : WNOHANG);
    if (waited == *pid || (waited < 0 && errno != EINTR)) break;
    if (waited == 0 && absl::Now() >= deadline) {
      kill(*pid, SIGKILL);
      while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
      }
      return absl::DeadlineExceededError(
          absl::StrCat("\"", command, "\" did not finish within ", absl::FormatDuration(timeout), "; killed"));
    }
    if (waited == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (waited == *pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "\"", command, "\" failed (exit status ", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
      options.log_path.empty() ? ")" : absl::StrCat("; see ", options.log_path, ")")));
}

absl::StatusOr<std::unique_ptr<RunDirectory>> RunDirectory::Make(const std::string& fallback_parent) {
  std::error_code error;
  const std::string parent = std::filesystem::is_directory("/dev/shm", error) && access("/dev/shm", W_OK) == 0
                                 ? std::string("/dev/shm")
                                 : fallback_parent;
  std::string path = parent + "/sparsepool-load-XXXXXX";
  if (mkdtemp(path.data()) == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("cannot make the workers' directory ", path, ": ",
                                                      std::strerror(errno)));
  }
  return std::unique_ptr<RunDirectory>(new RunDirectory(std::move(path)));
}

RunDirectory::~RunDirectory() {
  if (keep_) return;
  std::error_code ignored;  // what cannot be removed stays: nothing to do about it here
  std::filesystem::remove_all(path_, ignored);
}

LoadDaemon::LoadDaemon(std::vector<std::string> argv, std::string dir, const DaemonNetwork* network)
    : argv_(std::move(argv)), network_(network), port_file_(dir + "/daemon.port"), log_path_(dir + "/daemon.log") {}

LoadDaemon::~LoadDaemon() { Kill(); }

absl::Status LoadDaemon::Start(absl::Duration timeout) {
  unlink(port_file_.c_str());
  const std::string host = network_ != nullptr ? network_->address() : "127.0.0.1";
  std::vector<std::string> argv = argv_;
  argv.push_back(absl::StrCat("--listen=", address_.empty() ? absl::StrCat(host, ":0") : address_));
  argv.push_back(absl::StrCat("--port_file=", port_file_));
  // `ip netns exec` enters the namespace and execs the daemon: the pid is the daemon's.
  SpawnOptions options;
  options.log_path = log_path_;
  absl::StatusOr<pid_t> pid = Spawn(network_ != nullptr ? network_->Inside(argv) : argv, options);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::ifstream in(port_file_);
    int port = 0;
    if (std::string text; in >> text && absl::SimpleAtoi(text, &port) && port > 0) {
      address_ = absl::StrCat(host, ":", port);
      return absl::OkStatus();
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::FailedPreconditionError(absl::StrCat("sparsepoold exited at start: ", LogTail()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill();
  return absl::DeadlineExceededError(absl::StrCat("sparsepoold did not serve within ", absl::FormatDuration(timeout),
                                                  ": ", LogTail()));
}

void LoadDaemon::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  Wait();
}

void LoadDaemon::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  Wait();
}

void LoadDaemon::Wait() {
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

std::string LoadDaemon::LogTail() const {
  absl::StatusOr<std::string> log = ReadFileText(log_path_, "the daemon's log");
  if (!log.ok()) return std::string(log.status().message());
  constexpr size_t kTail = 2000;
  return log->size() > kTail ? log->substr(log->size() - kTail) : *log;
}

absl::StatusOr<ProcessFootprint> FootprintOf(pid_t pid) {
  ProcessFootprint footprint;
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  bool found = false;
  for (std::string line; std::getline(status, line);) {
    uint64_t kib = 0;
    if (absl::StartsWith(line, "RssAnon:") &&
        absl::SimpleAtoi(absl::StripSuffix(absl::StripAsciiWhitespace(line.substr(8)), " kB"), &kib)) {
      footprint.rss_anon_bytes = kib * 1024;
      found = true;
    }
  }
  if (!found) return absl::NotFoundError(absl::StrCat("no RssAnon in /proc/", pid, "/status (is it running?)"));
  DIR* fds = opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  if (fds == nullptr) return absl::NotFoundError(absl::StrCat("cannot list /proc/", pid, "/fd"));
  while (const dirent* entry = readdir(fds)) {
    if (entry->d_name[0] != '.') ++footprint.open_fds;
  }
  closedir(fds);
  return footprint;
}

namespace {
sigset_t InterruptSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}
}  // namespace

InterruptWatch::InterruptWatch(std::function<void(int count)> on_signal) : on_signal_(std::move(on_signal)) {
  const sigset_t set = InterruptSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  thread_ = std::thread([this, set] {
    const timespec poll = {0, 200 * 1000 * 1000};  // to notice done_
    while (!done_.load()) {
      if (sigtimedwait(&set, nullptr, &poll) > 0) on_signal_(++count_);
    }
  });
}

InterruptWatch::~InterruptWatch() {
  done_ = true;
  thread_.join();
  // The signals stay blocked: one that came during cleanup must not kill the process
  // halfway through it.
}

}  // namespace sparsepool::bench
