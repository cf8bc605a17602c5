// sparsepoolctl: the operator's view of a pool daemon.
//
//   sparsepoolctl [--address=HOST:PORT] [--timeout=5s] health
//   sparsepoolctl [--address=HOST:PORT] stats
//   sparsepoolctl [--address=HOST:PORT] list [--tenant=NAME]
//   sparsepoolctl [--address=HOST:PORT] release SEQUENCE_ID
//   sparsepoolctl hash-token < TOKEN_FILE
//
// A daemon that serves tenants takes an operator's token (--token_file; an operator
// lists and releases every tenant's sequences, a tenant's token sees its own); over
// TLS, --tls_root_certs names the daemon's CA (and --tls_cert/--tls_key a client
// certificate where the daemon asks for one). hash-token prints the SHA-256 a
// tenants file line takes for the token on standard input.
//
// Exit code: 0 on success, 1 when the daemon answers with an error or is unreachable,
// 2 for a malformed command line.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/channel_security.h"
#include "common/command_line.h"
#include "common/file_text.h"
#include "common/grpc_status.h"
#include "common/units.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "proto/sparsepool.grpc.pb.h"
#include "service/tenants.h"
#include "tools/cluster_view.h"

ABSL_FLAG(std::string, address, "127.0.0.1:7070", "the daemon's gRPC address (HOST:PORT)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(5), "each call's deadline");
ABSL_FLAG(std::string, etcd, "", "etcd endpoints HOST:PORT[,...] of a pool cluster (for the cluster command)");
ABSL_FLAG(std::string, etcd_prefix, "/sparsepool", "the cluster's key prefix in etcd");
ABSL_FLAG(std::string, tenant, "", "list: only this tenant's sequences (an operator's token sees every tenant)");
ABSL_FLAG(std::string, token_file, "",
          "a file holding the tenant's or operator's token (a file, not the token: command lines are visible to "
          "every user)");
ABSL_FLAG(std::string, tls_root_certs, "", "PEM file of the CA that signed the daemon's certificate (TLS)");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate chain, where the daemon asks for one");
ABSL_FLAG(std::string, tls_key, "", "PEM key of --tls_cert");

namespace sparsepool {
namespace {

constexpr char kUsage[] =
    "the operator's view of a pool daemon or cluster\n\n"
    "usage: sparsepoolctl [--address=HOST:PORT | --etcd=HOST:PORT] [--timeout=5s] [--token_file=PATH]\n"
    "                     [--tls_root_certs=PATH [--tls_cert=PATH --tls_key=PATH]] COMMAND\n"
    "commands:\n"
    "  health              is the daemon serving\n"
    "  stats               capacity, used, reclaimable, sequences, leases\n"
    "  list [--tenant=T]   live sequences\n"
    "  release ID          release a sequence\n"
    "  cluster             with --etcd=HOST:PORT[,...] [--etcd_prefix=/sparsepool]: every node of\n"
    "                      a pool cluster, its health, capacity, free bytes and sequences\n"
    "  hash-token          the token_sha256 of the token on standard input\n";

struct Command {
  std::string address = "127.0.0.1:7070";
  std::string etcd;
  std::string etcd_prefix = "/sparsepool";
  absl::Duration timeout = absl::Seconds(5);
  std::string tenant;
  std::string token;
  ChannelSecurity security;
  std::vector<std::string> words;
};

absl::StatusOr<Command> ParseCommand(int argc, char** argv) {
  Command command;
  command.words = ParseCommandLine(argc, argv, kUsage);
  command.address = absl::GetFlag(FLAGS_address);
  command.timeout = absl::GetFlag(FLAGS_timeout);
  if (command.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout=", absl::FormatDuration(command.timeout), " is not a positive duration"));
  }
  command.etcd = absl::GetFlag(FLAGS_etcd);
  command.etcd_prefix = absl::GetFlag(FLAGS_etcd_prefix);
  command.tenant = absl::GetFlag(FLAGS_tenant);
  if (const std::string path = absl::GetFlag(FLAGS_token_file); !path.empty()) {
    auto token = ReadFileText(path, "the token file");
    if (!token.ok()) return token.status();
    command.token = std::string(absl::StripAsciiWhitespace(*token));
  }
  command.security.tls_root_certs = absl::GetFlag(FLAGS_tls_root_certs);
  command.security.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  command.security.tls_key = absl::GetFlag(FLAGS_tls_key);
  if (command.words.empty()) return absl::InvalidArgumentError("no command given");
  return command;
}

class Ctl {
 public:
  Ctl(const Command& command, std::shared_ptr<grpc::ChannelCredentials> credentials)
      : command_(command), stub_(v1::PoolService::NewStub(grpc::CreateChannel(command.address, credentials))) {}

  absl::Status Health() {
    v1::HealthResponse response;
    absl::Status status = Call("Health", &v1::PoolService::Stub::Health, v1::HealthRequest(), &response);
    if (!status.ok()) return status;
    std::printf("%s: %s, version %s, up %s, %u region(s)\n", command_.address.c_str(),
                response.serving() ? "serving" : "not serving", response.version().c_str(),
                absl::FormatDuration(absl::Milliseconds(response.uptime_ms())).c_str(),
                response.regions());
    return absl::OkStatus();
  }

  absl::Status Stats() {
    v1::StatsResponse s;
    absl::Status status = Call("Stats", &v1::PoolService::Stub::Stats, v1::StatsRequest(), &s);
    if (!status.ok()) return status;
    std::printf("capacity     %s\nused         %s\nreclaimable  %s\nfree         %s\n",
                FormatBytes(s.capacity_bytes()).c_str(), FormatBytes(s.used_bytes()).c_str(),
                FormatBytes(s.reclaimable_bytes()).c_str(), FormatBytes(s.free_bytes()).c_str());
    std::printf("sequences    %u live, %u reclaimable\nleases       %u\n", s.live_sequences(),
                s.reclaimable_sequences(), s.leases());
    std::printf("counters     %llu created, %llu evicted, %llu leases expired, %llu recovered\n",
                static_cast<unsigned long long>(s.sequences_created()),
                static_cast<unsigned long long>(s.sequences_evicted()),
                static_cast<unsigned long long>(s.leases_expired()),
                static_cast<unsigned long long>(s.sequences_recovered()));
    std::printf("%-6s %-10s %-40s %12s %12s %12s\n", "region", "kind", "path", "capacity", "used",
                "free");
    for (const v1::RegionStats& r : s.regions()) {
      std::printf("%-6u %-10s %-40s %12s %12s %12s\n", r.region().index(), r.region().kind().c_str(),
                  r.region().path().c_str(), FormatBytes(r.capacity_bytes()).c_str(),
                  FormatBytes(r.used_bytes()).c_str(), FormatBytes(r.free_bytes()).c_str());
    }
    return absl::OkStatus();
  }

  absl::Status List() {
    v1::ListSequencesRequest request;
    request.set_tenant(command_.tenant);
    v1::ListSequencesResponse response;
    absl::Status status = Call("ListSequences", &v1::PoolService::Stub::ListSequences, request, &response);
    if (!status.ok()) return status;
    std::printf("%-10s %-16s %-28s %6s %6s %10s %12s %6s\n", "id", "tenant", "owner", "layers",
                "entry", "tokens", "bytes", "region");
    for (const v1::SequenceSummary& s : response.sequences()) {
      // A striped sequence: its home region and how many its layers are spread over.
      const std::string region = s.stripes() > 1 ? absl::StrCat(s.region(), " (", s.stripes(), " stripes)")
                                                 : absl::StrCat(s.region());
      std::printf("%-10llu %-16s %-28s %6u %6u %10llu %12s %6s\n",
                  static_cast<unsigned long long>(s.sequence_id()), s.tenant().c_str(),
                  s.owner().c_str(), s.layers(), s.entry_bytes(),
                  static_cast<unsigned long long>(s.tokens()), FormatBytes(s.bytes()).c_str(),
                  region.c_str());
    }
    std::printf("%d sequence(s)\n", response.sequences_size());
    return absl::OkStatus();
  }

  absl::Status Release(absl::string_view id_text) {
    uint64_t id = 0;
    if (!absl::SimpleAtoi(id_text, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("\"", id_text, "\" is not a sequence id"));
    }
    v1::ReleaseSequenceRequest request;
    request.set_sequence_id(id);
    v1::ReleaseSequenceResponse response;
    absl::Status status =
        Call("ReleaseSequence", &v1::PoolService::Stub::ReleaseSequence, request, &response);
    if (status.ok()) std::printf("released sequence %llu\n", static_cast<unsigned long long>(id));
    return status;
  }

 private:
  template <typename Request, typename Response>
  absl::Status Call(const char* name,
                    grpc::Status (v1::PoolService::Stub::*method)(grpc::ClientContext*,
                                                                  const Request&, Response*),
                    const Request& request, Response* response) {
    return CallWithDeadline(*stub_, method, name, command_.address, command_.timeout, command_.token, request,
                            response);
  }

  const Command command_;
  std::unique_ptr<v1::PoolService::Stub> stub_;
};

int Run(int argc, char** argv) {
  auto command = ParseCommand(argc, argv);
  if (!command.ok()) {
    std::fprintf(stderr, "sparsepoolctl: %s\n%s", std::string(command.status().message()).c_str(),
                 kUsage);
    return 2;
  }
  const std::vector<std::string>& words = command->words;
  if (words[0] == "hash-token" && words.size() == 1) {
    std::string token;
    for (int c = std::getchar(); c != EOF; c = std::getchar()) token.push_back(static_cast<char>(c));
    const absl::string_view trimmed = absl::StripAsciiWhitespace(token);
    if (trimmed.empty()) {
      std::fprintf(stderr, "sparsepoolctl: hash-token reads the token on standard input, and it was empty\n");
      return 2;
    }
    std::printf("%s\n", TokenHashHex(trimmed).c_str());
    return 0;
  }
  auto credentials = ChannelCredentialsFor(command->security);
  if (!credentials.ok()) {
    std::fprintf(stderr, "sparsepoolctl: %s\n", std::string(credentials.status().message()).c_str());
    return 2;
  }
  if (words[0] == "cluster" && words.size() == 1) {
    if (command->etcd.empty()) {
      std::fprintf(stderr, "sparsepoolctl: cluster needs --etcd=HOST:PORT\n%s", kUsage);
      return 2;
    }
    auto view = ClusterView(command->etcd, command->etcd_prefix, command->timeout, command->token, *credentials);
    if (!view.ok()) {
      std::fprintf(stderr, "sparsepoolctl: %s\n", view.status().ToString().c_str());
      return 1;
    }
    std::fputs(view->c_str(), stdout);
    return 0;
  }
  Ctl ctl(*command, *credentials);
  absl::Status status;
  if (words[0] == "health" && words.size() == 1) {
    status = ctl.Health();
  } else if (words[0] == "stats" && words.size() == 1) {
    status = ctl.Stats();
  } else if (words[0] == "list" && words.size() == 1) {
    status = ctl.List();
  } else if (words[0] == "release" && words.size() == 2) {
    status = ctl.Release(words[1]);
  } else {
    std::fprintf(stderr, "sparsepoolctl: unknown command\n%s", kUsage);
    return 2;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "sparsepoolctl: %s: %s\n", absl::StatusCodeToString(status.code()).c_str(),
                 std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace sparsepool

int main(int argc, char** argv) { return sparsepool::Run(argc, argv); }
