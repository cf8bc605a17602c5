// Child processes for integration tests: the daemon, the lease holder, the ctl tool.
// Output (stdout and stderr together) goes to a file the test can read while the
// child runs. A running child is killed when the object is destroyed.
#ifndef SPARSEPOOL_TESTS_CHILD_PROCESS_H_
#define SPARSEPOOL_TESTS_CHILD_PROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace sparsepool::testing {

// A scratch directory of the test (Bazel's TEST_TMPDIR).
std::string TestTempDir();

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts argv[0] (a path relative to the runfiles root, or absolute).
  absl::Status Start(const std::vector<std::string>& argv);
  // Waits until the output contains `text`; fails if the child exits first.
  absl::Status WaitForOutput(absl::string_view text, absl::Duration timeout);
  // Exit code if the child has exited (reaping it), nullopt while it runs.
  std::optional<int> Poll();
  // Sends `signal` and waits for the child; returns its exit code, or 128 + signal.
  int Signal(int signal);
  std::string Output() const;
  bool running() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
  std::string output_path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;
};
// Runs a program to completion.
CommandResult RunCommand(const std::vector<std::string>& argv);

}  // namespace sparsepool::testing

#endif  // SPARSEPOOL_TESTS_CHILD_PROCESS_H_
