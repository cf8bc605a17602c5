#include "tests/daemon_process.h"

#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace sparsepool::testing {

DaemonProcess::DaemonProcess(absl::string_view name, DaemonOptions options)
    : options_(std::move(options)) {
  std::string safe(name);
  for (char& c : safe) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '-';  // test names hold '/'
  }
  const std::string unique = absl::StrCat("sparsepool-test-", safe, "-", getpid());
  region_path_ = absl::StrCat(options_.region_dir, "/", unique);
  port_file_ = absl::StrCat(TestTempDir(), "/", unique, ".port");
  unlink(region_path_.c_str());
}

DaemonProcess::~DaemonProcess() {
  Kill();
  unlink(region_path_.c_str());
  unlink(port_file_.c_str());
}

absl::Status DaemonProcess::Start() {
  unlink(port_file_.c_str());
  std::vector<std::string> argv = {
      "service/sparsepoold",  // Bazel runs tests from the runfiles root
      options_.same_address_on_restart && !address_.empty() ? absl::StrCat("--listen=", address_)
                                                            : std::string("--listen=127.0.0.1:0"),
      absl::StrCat("--region=", options_.region_kind, ":", region_path_, ":", options_.region_size),
      absl::StrCat("--port_file=", port_file_),
      absl::StrCat("--lease_timeout=", options_.lease_timeout),
      absl::StrCat("--record_slots=", options_.record_slots),
  };
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  if (absl::Status started = process_.Start(argv); !started.ok()) return started;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    std::ifstream in(port_file_);
    std::string text;
    int port = 0;
    if (in >> text && absl::SimpleAtoi(text, &port) && port > 0) {
      address_ = absl::StrCat("127.0.0.1:", port);
      return absl::OkStatus();
    }
    if (auto code = process_.Poll()) {
      return absl::FailedPreconditionError(
          absl::StrCat("sparsepoold exited with ", *code, ": ", Log()));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  Kill();
  return absl::DeadlineExceededError(absl::StrCat("sparsepoold did not start: ", Log()));
}

}  // namespace sparsepool::testing
