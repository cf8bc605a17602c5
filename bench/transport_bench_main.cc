// Data-plane benchmark per transport (issue 4): one decode step's fetch of a layer,
// top-2048 of 656-byte entries per request, against fetching the request's whole
// prefix for that layer (what pools built for dense attention do), on several context
// lengths; for UCX also coalesced gets against one get per entry. Needs a daemon
// started with --ucx=true; UCX_TLS picks UCX's wire.
//
//   sparsepool_transport_bench [--address=127.0.0.1:7070] [--contexts=8192,32768,131072]
//       [--requests=2] [--reps=5] [--transports=cxl,ucx]
// (--help lists the flags with their defaults.)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/flag.h"
#include "bench/median.h"
#include "bench/topk_selection.h"
#include "client/client_internal.h"
#include "client/sparsepool_client.h"
#include "common/command_line.h"
#include "common/units.h"
#include "transport/cxl/cxl_data_plane.h"
#include "transport/rdma/ucx_data_plane.h"

ABSL_FLAG(std::string, address, "127.0.0.1:7070", "the daemon's gRPC address (HOST:PORT), started with --ucx=true");
ABSL_FLAG(std::vector<std::string>, contexts, (std::vector<std::string>{"8192", "32768", "131072"}),
          "context lengths, tokens, comma-separated positive numbers");
ABSL_FLAG(uint32_t, requests, 2, "requests (sequences) per fetch, positive");
ABSL_FLAG(int, reps, 5, "timed repetitions per row after two warm-ups (the median is reported), positive");
ABSL_FLAG(std::vector<std::string>, transports, (std::vector<std::string>{"cxl", "ucx"}),
          "data planes to measure, comma-separated: cxl and/or ucx");

namespace sparsepool {
namespace {

constexpr uint32_t kEntry = 656, kTopK = 2048, kLayers = 2;

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "sparsepool_transport_bench: %s\n", s.ToString().c_str());
  return 1;
}

int Run(int argc, char** argv) {
  ParseFlagsOnly(argc, argv,
                 "data-plane benchmark per transport (issue 4): a layer's top-2048 fetch against the whole "
                 "prefix, per context length, on a running daemon\n\n"
                 "usage: sparsepool_transport_bench [--flag=value...]");
  const std::string address = absl::GetFlag(FLAGS_address);
  const std::vector<std::string> transports = absl::GetFlag(FLAGS_transports);
  const uint32_t requests = absl::GetFlag(FLAGS_requests);
  const int reps = absl::GetFlag(FLAGS_reps);
  std::vector<uint64_t> contexts;
  if (const std::vector<std::string> given = absl::GetFlag(FLAGS_contexts); !bench::PositiveNumbers(given, contexts)) {
    return RefuseFlagValue("contexts", absl::StrJoin(given, ","), "positive numbers, comma-separated");
  }
  if (requests == 0) return RefuseFlagValue("requests", "0", "must be positive");
  if (reps <= 0) return RefuseFlagValue("reps", std::to_string(reps), "must be positive");
  ClientOptions options;
  options.address = address;
  auto client = Client::Connect(options);
  if (!client.ok()) return Fail(client.status());

  std::printf("| transport | context | fetch | bytes per request-layer | median time | GB/s | entries/s | gets | gets/s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  std::mt19937_64 rng(3);
  for (uint64_t context : contexts) {
    std::vector<SequenceId> ids;
    std::vector<SequenceLayout> layouts;
    std::vector<std::byte> entries(context * kEntry, std::byte{0x3C});
    for (uint32_t r = 0; r < requests; ++r) {
      SequenceSpec spec;
      spec.layers = kLayers;
      spec.entry_bytes = kEntry;
      spec.tokens = context;
      auto id = (*client)->CreateSequence(spec);
      if (!id.ok()) return Fail(id.status());
      for (uint32_t layer = 0; layer < kLayers; ++layer) {
        if (absl::Status s = (*client)->WriteEntries(*id, layer, 0, entries); !s.ok()) return Fail(s);
      }
      auto layout = internal::Layout(*(*client), *id);
      if (!layout.ok()) return Fail(layout.status());
      ids.push_back(*id);
      layouts.push_back(*layout);
    }
    std::vector<const SequenceLayout*> rows;
    for (const auto& l : layouts) rows.push_back(&l);

    for (const std::string& transport : transports) {
      std::unique_ptr<DataPlane> plane;
      UcxDataPlane* ucx = nullptr;
      if (transport == "ucx") {
        auto created = UcxDataPlane::Create(absl::Seconds(60));
        if (!created.ok()) return Fail(created.status());
        ucx = created->get();
        plane = *std::move(created);
      } else {
        plane = std::make_unique<CxlDataPlane>();
      }
      struct Mode {
        const char* name;
        bool prefix;
        bool coalesce;
      };
      std::vector<Mode> modes = {{"top-2048", false, true}, {"full prefix", true, true}};
      if (ucx != nullptr) modes.insert(modes.begin() + 1, Mode{"top-2048, one get per entry", false, false});
      for (const Mode& mode : modes) {
        if (ucx != nullptr) ucx->set_coalesce(mode.coalesce);
        const uint64_t k = mode.prefix ? context : kTopK;
        std::vector<int32_t> indices(rows.size() * k);
        std::vector<std::byte> out(indices.size() * kEntry);
        std::vector<double> seconds;
        const uint64_t gets_before = ucx != nullptr ? ucx->gets_issued() : 0;
        uint64_t gets_counted_from = gets_before;
        for (int rep = -2; rep < reps; ++rep) {  // two warm-ups: first-touch faults, wire-up
          for (size_t r = 0; r < rows.size(); ++r) {
            auto row = absl::MakeSpan(indices).subspan(r * k, k);
            if (mode.prefix) {
              std::iota(row.begin(), row.end(), 0);
            } else {
              bench::SelectTopK(context, 4, 128, rng, row);
            }
          }
          const auto start = std::chrono::steady_clock::now();
          absl::Status s = plane->Gather({static_cast<uint32_t>(rep % kLayers), rows, indices, absl::MakeSpan(out)});
          if (rep >= 0) seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
          if (rep == -1 && ucx != nullptr) gets_counted_from = ucx->gets_issued();
          if (!s.ok()) return Fail(s);
        }
        const double t = bench::Median(seconds);
        const double bytes = double(indices.size()) * kEntry;
        // Gets of entries per fetch and per second (the stale-layout check adds one per row).
        const double gets_per_fetch =
            ucx != nullptr ? double(ucx->gets_issued() - gets_counted_from) / reps : 0;
        const std::string gets = ucx != nullptr ? absl::StrFormat("%.0f", gets_per_fetch) : std::string("-");
        const std::string gets_per_s = ucx != nullptr ? absl::StrFormat("%.0f K", gets_per_fetch / t / 1e3) : "-";
        std::printf("| %s | %lluK | %s | %s | %.2f ms | %.2f | %.1f M | %s | %s |\n", transport.c_str(),
                    static_cast<unsigned long long>(context / 1024), mode.name,
                    FormatBytes(static_cast<uint64_t>(k * kEntry)).c_str(), t * 1e3, bytes / t / 1e9,
                    indices.size() / t / 1e6, gets.c_str(), gets_per_s.c_str());
        std::fflush(stdout);
      }
    }
    for (SequenceId id : ids) (void)(*client)->ReleaseSequence(id);
  }
  return 0;
}

}  // namespace
}  // namespace sparsepool

int main(int argc, char** argv) { return sparsepool::Run(argc, argv); }
