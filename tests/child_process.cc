#include "tests/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace sparsepool::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int ExitCode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

std::string TestTempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Signal(SIGKILL);
  if (!output_path_.empty()) unlink(output_path_.c_str());
}

absl::Status ChildProcess::Start(const std::vector<std::string>& argv) {
  static std::atomic<int> counter{0};
  if (output_path_.empty()) {
    output_path_ = absl::StrCat(TestTempDir(), "/child-", getpid(), "-", counter++, ".out");
  }
  // Every byte the child prints, across restarts, stays readable.
  const int fd = open(output_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", output_path_));
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(fd);
    return absl::InternalError("fork failed");
  }
  if (pid == 0) {
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fd);
  pid_ = pid;
  return absl::OkStatus();
}

absl::Status ChildProcess::WaitForOutput(absl::string_view text, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (absl::StrContains(Output(), text)) return absl::OkStatus();
    if (auto code = Poll()) {
      if (absl::StrContains(Output(), text)) return absl::OkStatus();
      return absl::FailedPreconditionError(
          absl::StrCat("child exited with ", *code, " before printing \"", text, "\": ", Output()));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("child did not print \"", text, "\" in time: ", Output()));
}

std::optional<int> ChildProcess::Poll() {
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
  pid_ = -1;
  return ExitCode(status);
}

int ChildProcess::Signal(int signal) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return ExitCode(status);
}

std::string ChildProcess::Output() const { return output_path_.empty() ? "" : ReadFile(output_path_); }

CommandResult RunCommand(const std::vector<std::string>& argv) {
  ChildProcess child;
  CommandResult result;
  if (!child.Start(argv).ok()) return result;
  std::optional<int> code;
  while (!(code = child.Poll())) absl::SleepFor(absl::Milliseconds(5));
  result.exit_code = *code;
  result.output = child.Output();
  return result;
}

}  // namespace sparsepool::testing
