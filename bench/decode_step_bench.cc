// The decode step as an engine runs it (issue 11): a whole step captured once in a CUDA
// graph by a DecodeSession and replayed, against the old path (GpuFetcher, one call per
// layer with host work each, Finish every step), against the link: pinned cudaMemcpy of
// the same bytes, measured in the same run. Runs against a real daemon.
//
//   sparsepool_decode_step_bench [--address=127.0.0.1:7070] [--pool_layers=8] [--step_layers=61]
//       [--k=2048] [--steps=20] [--warmup=5] [--growth_steps=1000] [--overlap=0.8]
//       [--profile] [--only=N,...]
// (--help lists the flags with their defaults; --only takes the configurations' numbers,
// 0 to 5 in the order of the table.)
//
// Memory: a 61-layer pool of 16 requests at 128K tokens is 90 GB, more than the device
// machine holds; so the pool's sequences have --pool_layers layers and the captured step
// makes --step_layers fetches and writes over them in turn (layer l uses pool layer
// l % pool_layers): every launch of a 61-layer step is there, the working set is
// pool_layers/61 of a full one (still far above the 1 GiB where GPU loads from host
// memory lose rate, docs/gpu.md).
#include <cuda_runtime.h>  // the typed cudaMalloc overloads

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/entry_pattern.h"
#include "bench/gpu_fetcher.h"
#include "bench/link_rate.h"
#include "bench/median.h"
#include "bench/overlap_trace.h"
#include "bench/stand_in_attention.h"
#include "client/client_internal.h"
#include "client/decode_session.h"
#include "common/command_line.h"
#include "kernels/cuda_check.h"

ABSL_FLAG(std::string, address, "127.0.0.1:7070", "the daemon's gRPC address (HOST:PORT)");
ABSL_FLAG(uint32_t, pool_layers, 8,
          "layers per sequence in the pool, positive (step layer l uses pool layer l % pool_layers)");
ABSL_FLAG(uint32_t, step_layers, 61, "fetches and writes per captured step (the model's layers), positive");
ABSL_FLAG(uint32_t, k, 2048, "entries selected per row and layer (top-k), positive");
ABSL_FLAG(int, steps, 20, "timed steps per configuration, positive");
ABSL_FLAG(int, warmup, 5, "steps replayed before the timed ones, 0 or more");
ABSL_FLAG(int, growth_steps, 1000,
          "steps of the growing run (128K x 16, no cache) reported as wall p50/p99, 0 or more (0: none)");
ABSL_FLAG(double, overlap, 0.8, "share of a row's top-k kept from the previous step, 0 to 1");
ABSL_FLAG(bool, profile, false, "compare session variants per configuration instead of the table");
ABSL_FLAG(std::vector<std::string>, only, {},
          "run only these configurations, by number in the table's order (0 to 5), comma-separated; empty: all");

namespace sparsepool::bench {
namespace {

constexpr uint32_t kEntry = 656;
constexpr uint64_t kSeed = 11;

// The flags' values (their defaults are the flags').
struct Flags {
  std::string address;
  uint32_t pool_layers = 0;
  uint32_t step_layers = 0;
  uint32_t k = 0;
  int steps = 0;
  int warmup = 0;
  int growth_steps = 0;
  double overlap = 0;
  bool profile = false;  // compare session variants instead of the table
  std::vector<std::string> only;
};

struct Config {
  std::string name;
  uint32_t batch;
  uint64_t context;
  uint32_t cache_slots;
  bool old_path;  // also time the GpuFetcher path
  bool growth;    // also run growth_steps steps and report p50/p99
};

[[noreturn]] void Fail(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), status.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Check(absl::StatusOr<T> value, const std::string& what) {
  if (!value.ok()) Fail(what, value.status());
  return *std::move(value);
}

void Check(const absl::Status& status, const std::string& what) {
  if (!status.ok()) Fail(what, status);
}

// What a variant of the session changes (the profile compares them in one run).
struct Variant {
  std::string name = "default";
  GatherOrder algorithm = GatherOrder::kWarpPerEntry;
  uint32_t slices_per_row = 0;
  uint32_t buffers = 0;  // 0: one per pool layer (the spot check reads layer 0's)
  bool writes = true;
  uint32_t lookup_threads = 512;
  uint32_t fill_warps = 1024;
  uint32_t max_blocks = 0;
  bool hits_ready = false;
};

// One configuration's sequences, session and inputs.
class Run {
 public:
  Run(const Flags& flags, const Config& config, Client* client, GpuRegionRegistry* regions)
      : flags_(flags), config_(config), client_(client), regions_(regions) {}

  ~Run() {
    session_.reset();
    if (graph_ != nullptr) cudaGraphExecDestroy(graph_);
    for (void* p : {static_cast<void*>(d_topk_), static_cast<void*>(d_sets_), static_cast<void*>(d_new_),
                    static_cast<void*>(d_out_), static_cast<void*>(d_instances_), static_cast<void*>(d_slots_)}) {
      if (p != nullptr) cudaFree(p);
    }
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
    for (SequenceId id : ids_) (void)client_->ReleaseSequence(id);
  }

  void Setup(int sets) {
    SPARSEPOOL_CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    const uint32_t batch = config_.batch;
    // Sequences: layer 0 written with the pattern (spot-checked below), the other layers
    // allocated (the daemon allocates every page when it opens its region).
    std::vector<std::byte> layer0(config_.context * kEntry);
    for (uint32_t row = 0; row < batch; ++row) {
      SequenceSpec spec;
      spec.layers = flags_.pool_layers;
      spec.entry_bytes = kEntry;
      spec.tokens = config_.context;
      const SequenceId id = Check(client_->CreateSequence(spec), "creating a sequence");
      for (uint64_t t = 0; t < config_.context; ++t) {
        FillEntry(kSeed, id, 0, t, absl::MakeSpan(layer0).subspan(t * kEntry, kEntry));
      }
      Check(client_->WriteEntries(id, 0, 0, layer0), "writing layer 0");
      ids_.push_back(id);
    }
    // Top-k sets, one per step: random for the plain gather, indexer-like overlapping
    // traces (one per row and pool layer, advancing at every call on that layer) for the cache.
    sets_ = sets;
    const uint64_t per_step = uint64_t{flags_.step_layers} * batch * flags_.k;
    std::vector<int32_t> host(per_step * sets);
    std::mt19937_64 rng(5);
    if (config_.cache_slots == 0) {
      for (auto& index : host) index = static_cast<int32_t>(rng() % config_.context);
    } else {
      std::vector<std::unique_ptr<OverlapTrace>> traces;
      for (uint32_t i = 0; i < batch * flags_.pool_layers; ++i) {
        traces.push_back(std::make_unique<OverlapTrace>(config_.context, flags_.k, flags_.overlap, 100 + i));
      }
      for (int s = 0; s < sets; ++s) {
        for (uint32_t l = 0; l < flags_.step_layers; ++l) {
          for (uint32_t row = 0; row < batch; ++row) {
            const std::vector<int32_t>& next = traces[row * flags_.pool_layers + l % flags_.pool_layers]->Next();
            std::copy(next.begin(), next.end(), host.begin() + s * per_step + (uint64_t{l} * batch + row) * flags_.k);
          }
        }
      }
    }
    SPARSEPOOL_CHECK_CUDA(cudaMalloc(&d_sets_, host.size() * sizeof(int32_t)));
    SPARSEPOOL_CHECK_CUDA(cudaMemcpy(d_sets_, host.data(), host.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
    SPARSEPOOL_CHECK_CUDA(cudaMalloc(&d_topk_, per_step * sizeof(int32_t)));
    std::vector<std::byte> fresh(uint64_t{flags_.pool_layers} * batch * kEntry);
    for (auto& b : fresh) b = static_cast<std::byte>(rng());
    SPARSEPOOL_CHECK_CUDA(cudaMalloc(&d_new_, fresh.size()));
    SPARSEPOOL_CHECK_CUDA(cudaMemcpy(d_new_, fresh.data(), fresh.size(), cudaMemcpyHostToDevice));
    SPARSEPOOL_CHECK_CUDA(cudaStreamSynchronize(stream_));
  }

  int32_t* topk_for_call(uint32_t l) const { return d_topk_ + uint64_t{l} * config_.batch * flags_.k; }

  // A fresh session over the run's sequences, its step captured.
  void StartSession(const Variant& v = Variant()) {
    if (graph_ != nullptr) cudaGraphExecDestroy(graph_);
    graph_ = nullptr;
    session_.reset();
    DecodeSessionOptions o;
    o.max_batch = config_.batch;
    o.layers = flags_.pool_layers;
    o.entry_bytes = kEntry;
    o.k = flags_.k;
    o.max_tokens = config_.context + flags_.growth_steps + 8 * (flags_.steps + flags_.warmup) + 4096;
    o.cache_slots = config_.cache_slots;
    o.buffers = v.buffers != 0 ? v.buffers : flags_.pool_layers;
    o.gather_algorithm = v.algorithm;
    o.slices_per_row = v.slices_per_row;
    o.cache_lookup_threads = v.lookup_threads;
    o.cache_fill_warps = v.fill_warps;
    o.max_blocks = v.max_blocks;
    o.record_hits_ready = v.hits_ready;
    session_ = Check(DecodeSession::Create(client_, regions_, o), "creating the session");
    for (SequenceId id : ids_) {
      auto layout = Check(internal::CachedLayout(*client_, id), "layout");
      Check(session_->Join(id, layout->tokens > config_.context ? config_.context : layout->tokens, stream_), "joining");
    }
    Capture(v.writes);
  }

  void Capture(bool writes) {
    SPARSEPOOL_CHECK_CUDA(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal));
    Check(session_->BeginStep(stream_), "BeginStep");
    for (uint32_t l = 0; l < flags_.step_layers; ++l) {
      const uint32_t layer = l % flags_.pool_layers;
      if (writes) {
        Check(session_->WriteLayer(layer, d_new_ + uint64_t{layer} * config_.batch * kEntry, stream_), "WriteLayer");
      }
      Check(session_->FetchLayer(layer, topk_for_call(l), stream_), "FetchLayer");
    }
    Check(session_->EndStep(stream_), "EndStep");
    cudaGraph_t graph = nullptr;
    SPARSEPOOL_CHECK_CUDA(cudaStreamEndCapture(stream_, &graph));
    SPARSEPOOL_CHECK_CUDA(cudaGraphInstantiate(&graph_, graph, 0));
    SPARSEPOOL_CHECK_CUDA(cudaGraphDestroy(graph));
  }

  struct StepTimes {
    std::vector<double> gpu_ms;       // the graph, by events
    std::vector<double> host_us;      // PrepareStep + cudaGraphLaunch on the host
    std::vector<double> prepare_us;   // PrepareStep alone
    std::vector<double> launch_us;    // cudaGraphLaunch alone
    std::vector<double> wall_ms;      // PrepareStep to the step's end, host clock
  };

  // `count` steps of the captured graph, each on top-k set (first + i) % sets.
  StepTimes Replay(int count, int first) {
    StepTimes t;
    cudaEvent_t start, stop;
    SPARSEPOOL_CHECK_CUDA(cudaEventCreate(&start));
    SPARSEPOOL_CHECK_CUDA(cudaEventCreate(&stop));
    const uint64_t per_step = uint64_t{flags_.step_layers} * config_.batch * flags_.k;
    std::vector<DecodeSession::RowFailure> failures;
    for (int i = 0; i < count; ++i) {
      SPARSEPOOL_CHECK_CUDA(cudaMemcpyAsync(d_topk_, d_sets_ + ((first + i) % sets_) * per_step,
                                            per_step * sizeof(int32_t), cudaMemcpyDeviceToDevice, stream_));
      const absl::Time begin = absl::Now();
      Check(session_->PrepareStep(stream_, &failures), "PrepareStep");
      const absl::Time prepared = absl::Now();
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(start, stream_));
      const absl::Time launching = absl::Now();
      SPARSEPOOL_CHECK_CUDA(cudaGraphLaunch(graph_, stream_));
      const absl::Time launched = absl::Now();
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(stop, stream_));
      SPARSEPOOL_CHECK_CUDA(cudaEventSynchronize(stop));
      const absl::Time end = absl::Now();
      float ms = 0;
      SPARSEPOOL_CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
      t.gpu_ms.push_back(ms);
      t.host_us.push_back(absl::ToDoubleMicroseconds(launched - begin));
      t.prepare_us.push_back(absl::ToDoubleMicroseconds(prepared - begin));
      t.launch_us.push_back(absl::ToDoubleMicroseconds(launched - launching));
      t.wall_ms.push_back(absl::ToDoubleMilliseconds(end - begin));
      for (const auto& f : failures) Fail(absl::StrCat("row ", f.row), f.status);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return t;
  }

  // Row 0's delivered entries of the last step's last call on pool layer 0 hold the
  // pattern written (tokens the step itself wrote excepted).
  void SpotCheck(int set) {
    const uint32_t last_call = ((flags_.step_layers - 1) / flags_.pool_layers) * flags_.pool_layers;
    const DecodeSession::Delivery d = session_->delivered(0);
    std::vector<int32_t> flat(flags_.k), topk(flags_.k);
    SPARSEPOOL_CHECK_CUDA(cudaMemcpy(flat.data(), d.flat_indices, flags_.k * 4, cudaMemcpyDeviceToHost));
    const uint64_t per_step = uint64_t{flags_.step_layers} * config_.batch * flags_.k;
    SPARSEPOOL_CHECK_CUDA(cudaMemcpy(topk.data(), d_sets_ + (set % sets_) * per_step + uint64_t{last_call} * config_.batch * flags_.k,
                                     flags_.k * 4, cudaMemcpyDeviceToHost));
    std::vector<std::byte> got(kEntry), expected(kEntry);
    int checked = 0;
    for (uint32_t i = 0; i < flags_.k && checked < 64; ++i) {
      if (topk[i] < 0 || static_cast<uint64_t>(topk[i]) >= config_.context || flat[i] < 0) continue;
      SPARSEPOOL_CHECK_CUDA(cudaMemcpy(got.data(), d.entries + uint64_t(flat[i]) * kEntry, kEntry, cudaMemcpyDeviceToHost));
      FillEntry(kSeed, ids_[0], 0, topk[i], absl::MakeSpan(expected));
      if (got != expected) Fail(absl::StrCat("spot check, token ", topk[i]), absl::DataLossError("wrong bytes"));
      ++checked;
    }
    std::printf("  spot check: %d delivered entries of row 0 match what was written\n", checked);
  }

  // With the cache, eagerly (no graph): the lookup's and the fill's time per call,
  // from the session's hits_ready events (median over a step's calls).
  void ProfileCache(int set) {
    const uint64_t per_step = uint64_t{flags_.step_layers} * config_.batch * flags_.k;
    SPARSEPOOL_CHECK_CUDA(cudaMemcpyAsync(d_topk_, d_sets_ + (set % sets_) * per_step, per_step * sizeof(int32_t),
                                          cudaMemcpyDeviceToDevice, stream_));
    std::vector<DecodeSession::RowFailure> failures;
    Check(session_->PrepareStep(stream_, &failures), "PrepareStep");
    Check(session_->BeginStep(stream_), "BeginStep");
    std::vector<cudaEvent_t> starts(flags_.step_layers), ends(flags_.step_layers);
    std::vector<double> lookup, fill;
    for (uint32_t l = 0; l < flags_.step_layers; ++l) {
      const uint32_t layer = l % flags_.pool_layers;
      SPARSEPOOL_CHECK_CUDA(cudaEventCreate(&starts[l]));
      SPARSEPOOL_CHECK_CUDA(cudaEventCreate(&ends[l]));
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(starts[l], stream_));
      Check(session_->FetchLayer(layer, topk_for_call(l), stream_), "FetchLayer");
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(ends[l], stream_));
      SPARSEPOOL_CHECK_CUDA(cudaEventSynchronize(ends[l]));  // before the next call re-records hits_ready
      float a = 0, b = 0;
      SPARSEPOOL_CHECK_CUDA(cudaEventElapsedTime(&a, starts[l], session_->hits_ready(layer)));
      SPARSEPOOL_CHECK_CUDA(cudaEventElapsedTime(&b, session_->hits_ready(layer), ends[l]));
      lookup.push_back(a * 1e3);
      fill.push_back(b * 1e3);
    }
    Check(session_->EndStep(stream_), "EndStep");
    SPARSEPOOL_CHECK_CUDA(cudaStreamSynchronize(stream_));
    for (uint32_t l = 0; l < flags_.step_layers; ++l) {
      cudaEventDestroy(starts[l]);
      cudaEventDestroy(ends[l]);
    }
    std::printf("  eager, per layer call: lookup %.1f us, fill %.1f us (medians over %u calls)\n", Median(lookup),
                Median(fill), flags_.step_layers);
  }

  // Hits first (cache only; a session with hits_ready events): per layer call, a
  // stand-in attention on a second stream either waits for the whole fetch, or starts
  // on the hits when the lookup is done and takes the misses when they have landed.
  // Layers stay in order (call l's fetch waits for call l-1's attention), as in a model.
  // Returns the step's time (ms) for {wait for all, hits first}.
  std::pair<double, double> HitsFirst(int set, int rounds) {
    cudaStream_t attention_stream = nullptr;
    SPARSEPOOL_CHECK_CUDA(cudaStreamCreateWithFlags(&attention_stream, cudaStreamNonBlocking));
    float* sink = nullptr;
    SPARSEPOOL_CHECK_CUDA(cudaMalloc(&sink, sizeof(float)));
    std::vector<cudaEvent_t> fetched(flags_.step_layers), attended(flags_.step_layers);
    for (uint32_t l = 0; l < flags_.step_layers; ++l) {
      SPARSEPOOL_CHECK_CUDA(cudaEventCreateWithFlags(&fetched[l], cudaEventDisableTiming));
      SPARSEPOOL_CHECK_CUDA(cudaEventCreateWithFlags(&attended[l], cudaEventDisableTiming));
    }
    cudaEvent_t start, stop;
    SPARSEPOOL_CHECK_CUDA(cudaEventCreate(&start));
    SPARSEPOOL_CHECK_CUDA(cudaEventCreate(&stop));
    const uint64_t per_step = uint64_t{flags_.step_layers} * config_.batch * flags_.k;
    double times[2];
    for (int hits_first = 0; hits_first < 2; ++hits_first) {
      SPARSEPOOL_CHECK_CUDA(cudaMemcpyAsync(d_topk_, d_sets_ + ((set + hits_first) % sets_) * per_step,
                                            per_step * sizeof(int32_t), cudaMemcpyDeviceToDevice, stream_));
      std::vector<DecodeSession::RowFailure> failures;
      Check(session_->PrepareStep(stream_, &failures), "PrepareStep");
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(start, stream_));
      Check(session_->BeginStep(stream_), "BeginStep");
      for (uint32_t l = 0; l < flags_.step_layers; ++l) {
        const uint32_t layer = l % flags_.pool_layers;
        if (l > 0) SPARSEPOOL_CHECK_CUDA(cudaStreamWaitEvent(stream_, attended[l - 1]));
        Check(session_->FetchLayer(layer, topk_for_call(l), stream_), "FetchLayer");
        SPARSEPOOL_CHECK_CUDA(cudaEventRecord(fetched[l], stream_));
        const DecodeSession::Delivery d = session_->delivered(layer);
        StandInAttention a;
        a.entries = d.entries;
        a.flat = d.flat_indices;
        a.batch = config_.batch;
        a.k = flags_.k;
        a.entry_bytes = kEntry;
        a.rounds = rounds;
        a.miss_positions = session_->miss_positions(0, 0);
        a.miss_counts = session_->miss_count(0, 0);
        a.layers = flags_.pool_layers;
        a.layer = layer;
        a.capacity = config_.cache_slots;
        a.sink = sink;
        if (hits_first != 0) {
          SPARSEPOOL_CHECK_CUDA(cudaStreamWaitEvent(attention_stream, session_->hits_ready(layer)));
          SPARSEPOOL_CHECK_CUDA(LaunchStandInAttention(a, AttentionPhase::kHitsOnly, attention_stream));
          SPARSEPOOL_CHECK_CUDA(cudaStreamWaitEvent(attention_stream, fetched[l]));
          SPARSEPOOL_CHECK_CUDA(LaunchStandInAttention(a, AttentionPhase::kMissesOnly, attention_stream));
        } else {
          SPARSEPOOL_CHECK_CUDA(cudaStreamWaitEvent(attention_stream, fetched[l]));
          SPARSEPOOL_CHECK_CUDA(LaunchStandInAttention(a, AttentionPhase::kAll, attention_stream));
        }
        SPARSEPOOL_CHECK_CUDA(cudaEventRecord(attended[l], attention_stream));
      }
      SPARSEPOOL_CHECK_CUDA(cudaStreamWaitEvent(stream_, attended[flags_.step_layers - 1]));
      Check(session_->EndStep(stream_), "EndStep");
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(stop, stream_));
      SPARSEPOOL_CHECK_CUDA(cudaEventSynchronize(stop));
      float ms = 0;
      SPARSEPOOL_CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
      times[hits_first] = ms;
      for (const auto& f : failures) Fail(absl::StrCat("row ", f.row), f.status);
    }
    for (uint32_t l = 0; l < flags_.step_layers; ++l) {
      cudaEventDestroy(fetched[l]);
      cudaEventDestroy(attended[l]);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaFree(sink);
    cudaStreamDestroy(attention_stream);
    return {times[0], times[1]};
  }

  // The old path: GpuFetcher, a call per layer (host work each), Finish per step.
  std::vector<double> OldPath(int count, int first) {
    GpuFetcher::Options options;
    options.regions = regions_;
    options.fence = Check(internal::Fence(*client_), "the client's release fence");
    auto fetcher = Check(GpuFetcher::Create(options), "GpuFetcher");
    std::vector<std::shared_ptr<const SequenceLayout>> held;
    std::vector<const SequenceLayout*> layouts;
    for (SequenceId id : ids_) {
      held.push_back(Check(internal::CachedLayout(*client_, id), "layout"));
      layouts.push_back(held.back().get());
    }
    const uint32_t batch = config_.batch;
    std::unique_ptr<kernels::ResidencyCache> cache;
    if (config_.cache_slots != 0) {
      kernels::ResidencyOptions ro;
      ro.instances = batch * flags_.pool_layers;
      ro.capacity = config_.cache_slots;
      ro.max_tokens = static_cast<uint32_t>(config_.context);
      ro.entry_bytes = kEntry;
      cache = Check(kernels::ResidencyCache::Create(ro), "residency cache");
      std::vector<uint32_t> instances(uint64_t{flags_.pool_layers} * batch);
      for (uint32_t layer = 0; layer < flags_.pool_layers; ++layer) {
        for (uint32_t row = 0; row < batch; ++row) instances[layer * batch + row] = row * flags_.pool_layers + layer;
      }
      SPARSEPOOL_CHECK_CUDA(cudaMalloc(&d_instances_, instances.size() * 4));
      SPARSEPOOL_CHECK_CUDA(cudaMemcpy(d_instances_, instances.data(), instances.size() * 4, cudaMemcpyHostToDevice));
      SPARSEPOOL_CHECK_CUDA(cudaMalloc(&d_slots_, uint64_t{batch} * flags_.k * 4));
    } else {
      SPARSEPOOL_CHECK_CUDA(cudaMalloc(&d_out_, uint64_t{batch} * flags_.k * kEntry));
    }
    const uint64_t per_step = uint64_t{flags_.step_layers} * batch * flags_.k;
    std::vector<double> wall_ms;
    for (int i = 0; i < count; ++i) {
      SPARSEPOOL_CHECK_CUDA(cudaMemcpyAsync(d_topk_, d_sets_ + ((first + i) % sets_) * per_step,
                                            per_step * sizeof(int32_t), cudaMemcpyDeviceToDevice, stream_));
      SPARSEPOOL_CHECK_CUDA(cudaStreamSynchronize(stream_));
      const absl::Time begin = absl::Now();
      for (uint32_t l = 0; l < flags_.step_layers; ++l) {
        const uint32_t layer = l % flags_.pool_layers;
        if (cache != nullptr) {
          Check(fetcher->FetchTopKCached(*cache, layer, layouts, d_instances_ + uint64_t{layer} * batch, topk_for_call(l),
                                         flags_.k, static_cast<uint32_t>(first + i), d_slots_, stream_),
                "FetchTopKCached");
        } else {
          Check(fetcher->FetchTopK(layer, layouts, topk_for_call(l), flags_.k, d_out_, stream_), "FetchTopK");
        }
      }
      Check(fetcher->Finish(stream_), "Finish");
      wall_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - begin));
    }
    return wall_ms;
  }

  DecodeSession& session() { return *session_; }

 private:
  const Flags& flags_;
  const Config config_;
  Client* client_;
  GpuRegionRegistry* regions_;
  std::vector<SequenceId> ids_;
  std::unique_ptr<DecodeSession> session_;
  cudaStream_t stream_ = nullptr;
  cudaGraphExec_t graph_ = nullptr;
  int32_t* d_sets_ = nullptr;
  int32_t* d_topk_ = nullptr;
  std::byte* d_new_ = nullptr;
  std::byte* d_out_ = nullptr;
  uint32_t* d_instances_ = nullptr;
  int32_t* d_slots_ = nullptr;
  int sets_ = 1;
};

Flags ParseFlags(int argc, char** argv) {
  ParseFlagsOnly(argc, argv,
                 "the decode step captured in a CUDA graph by a DecodeSession and replayed, against the old "
                 "per-layer path and the link, on a running daemon (issue 11; needs a CUDA device)\n\n"
                 "usage: sparsepool_decode_step_bench [--flag=value...]");
  Flags f;
  f.address = absl::GetFlag(FLAGS_address);
  f.pool_layers = absl::GetFlag(FLAGS_pool_layers);
  f.step_layers = absl::GetFlag(FLAGS_step_layers);
  f.k = absl::GetFlag(FLAGS_k);
  f.steps = absl::GetFlag(FLAGS_steps);
  f.warmup = absl::GetFlag(FLAGS_warmup);
  f.growth_steps = absl::GetFlag(FLAGS_growth_steps);
  f.overlap = absl::GetFlag(FLAGS_overlap);
  f.profile = absl::GetFlag(FLAGS_profile);
  f.only = absl::GetFlag(FLAGS_only);
  if (f.pool_layers == 0) std::exit(RefuseFlagValue("pool_layers", "0", "must be positive"));
  if (f.step_layers == 0) std::exit(RefuseFlagValue("step_layers", "0", "must be positive"));
  if (f.k == 0) std::exit(RefuseFlagValue("k", "0", "must be positive"));
  if (f.steps <= 0) std::exit(RefuseFlagValue("steps", std::to_string(f.steps), "must be positive"));
  if (f.warmup < 0) std::exit(RefuseFlagValue("warmup", std::to_string(f.warmup), "0 or more"));
  if (f.growth_steps < 0) std::exit(RefuseFlagValue("growth_steps", std::to_string(f.growth_steps), "0 or more"));
  if (!(f.overlap >= 0 && f.overlap <= 1)) std::exit(RefuseFlagValue("overlap", absl::StrCat(f.overlap), "0 to 1"));
  return f;
}

int Main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  ClientOptions client_options;
  client_options.address = flags.address;
  client_options.copy_threads = 8;
  client_options.rpc_timeout = absl::Seconds(60);
  auto client = Check(Client::Connect(client_options), "connecting");
  auto regions = Check(GpuRegionRegistry::Create(), "GPU region registry");
  {
    // Warm-up: register the pool's region before any step (pins every page).
    SequenceSpec spec;
    spec.layers = 1;
    spec.entry_bytes = kEntry;
    spec.tokens = 1;
    const SequenceId probe = Check(client->CreateSequence(spec), "probe sequence");
    const absl::Time begin = absl::Now();
    auto layout = Check(internal::CachedLayout(*client, probe), "probe layout");
    Check(regions->Register(layout->region).status(), "registering the region");
    std::printf("registered %.1f GiB of pool for the GPU in %.2f s\n", regions->pinned_bytes() / double(1 << 30),
                absl::ToDoubleSeconds(absl::Now() - begin));
    Check(client->ReleaseSequence(probe), "releasing the probe");
  }
  const double link = PinnedHostToDeviceGBs();
  std::printf("link: pinned cudaMemcpy host->device %.1f GB/s\n", link);
  std::printf("step: %u fetches and writes over %u pool layers, k=%u, %u-byte entries\n\n", flags.step_layers,
              flags.pool_layers, flags.k, kEntry);

  const std::vector<Config> configs = {
      {"128K x 1, no cache", 1, 131072, 0, true, false},
      {"128K x 16, no cache", 16, 131072, 0, true, true},
      {"128K x 16, cache 4096", 16, 131072, 4096, true, false},
      {"32K x 64, no cache", 64, 32768, 0, false, false},
      {"32K x 64, cache 4096", 64, 32768, 4096, false, false},
      {"32K x 1, no cache", 1, 32768, 0, false, false},
  };
  std::vector<std::string> rows;
  for (size_t c = 0; c < configs.size(); ++c) {
    const Config& config = configs[c];
    if (!flags.only.empty() && std::find(flags.only.begin(), flags.only.end(), std::to_string(c)) == flags.only.end()) {
      continue;
    }
    std::printf("%s\n", config.name.c_str());
    Run run(flags, config, client.get(), regions.get());
    run.Setup(config.cache_slots == 0 ? 4 : flags.warmup + flags.steps);
    if (flags.profile) {
      std::vector<Variant> variants;
      if (config.cache_slots != 0) {
        variants.push_back({"fill per row", GatherOrder::kWarpPerEntry, 0, 0, true, 512, 0, 0, true});
        variants.push_back({"fill row order", GatherOrder::kWarpPerEntry, 0, 0, true, 512, 1024, 0, true});
      } else {
        variants.push_back({"warp/entry, 3 buffers", GatherOrder::kWarpPerEntry, 0, 3, true});
        variants.push_back({"warp/entry, 1 buffer", GatherOrder::kWarpPerEntry, 0, 1, true});
        for (uint32_t blocks : {128u, 256u, 512u}) {
          variants.push_back({absl::StrCat("warp/entry, 3 buffers, ", blocks, " blocks"), GatherOrder::kWarpPerEntry,
                              0, 3, true, 512, 0, blocks});
        }
      }
      for (const Variant& v : variants) {
        run.StartSession(v);
        run.Replay(flags.warmup, 0);
        const Run::StepTimes t = run.Replay(flags.steps, flags.warmup);
        std::printf("  %-20s graph p50 %.2f ms (min %.2f)\n", v.name.c_str(), Median(t.gpu_ms),
                    *std::min_element(t.gpu_ms.begin(), t.gpu_ms.end()));
        if (config.cache_slots != 0) run.ProfileCache(flags.warmup + flags.steps - 1);
      }
      continue;
    }
    run.StartSession();
    CacheCounters before{};
    run.Replay(flags.warmup, 0);
    if (config.cache_slots != 0) before = Check(run.session().cache_counters(), "counters");
    const Run::StepTimes t = run.Replay(flags.steps, flags.warmup);
    run.SpotCheck(flags.warmup + flags.steps - 1);
    const double selected = double(config.batch) * flags.k * flags.step_layers;
    double moved = selected * kEntry;
    if (config.cache_slots != 0) {
      const CacheCounters after = Check(run.session().cache_counters(), "counters");
      moved = double(after.misses - before.misses) / flags.steps * kEntry;
    }
    const double bound_ms = moved / (link * 1e9) * 1e3;
    const double p50 = Median(t.gpu_ms);
    std::string old = "-";
    if (config.old_path) {
      const std::vector<double> old_ms = run.OldPath(flags.steps, flags.warmup);
      old = absl::StrFormat("%.2f ms (%.2fx)", Median(old_ms), Median(old_ms) / bound_ms);
    }
    if (config.cache_slots != 0 && !flags.profile) {
      // The same sequences, a session that marks when each layer's hits are ready.
      Variant with_events;
      with_events.hits_ready = true;
      run.StartSession(with_events);
      run.Replay(flags.warmup, 0);
      for (int rounds : {32, 256, 1024}) {
        const auto [serial, overlapped] = run.HitsFirst(flags.warmup, rounds);
        std::printf("  stand-in attention (%d rounds) after each layer's fetch: step %.2f ms; on the hits first: "
                    "%.2f ms (%.2fx)\n",
                    rounds, serial, overlapped, serial / overlapped);
      }
    }
    std::string growth = "-";
    if (config.growth && flags.growth_steps > 0) {
      const Run::StepTimes g = run.Replay(flags.growth_steps, 0);
      growth = absl::StrFormat("p50 %.2f / p99 %.2f ms (%.2fx)", Percentile(g.wall_ms, 0.5), Percentile(g.wall_ms, 0.99),
                               Percentile(g.wall_ms, 0.99) / Percentile(g.wall_ms, 0.5));
    }
    rows.push_back(absl::StrFormat("| %s | %.1f MB | %.2f ms | %.2f ms (%.2fx) | %s | %.0f us (%.0f + %.0f) | %.1f M | %s |",
                                   config.name, moved / 1e6, bound_ms, p50, p50 / bound_ms, old,
                                   Median(t.host_us), Median(t.prepare_us), Median(t.launch_us),
                                   selected / (p50 * 1e-3) / 1e6, growth));
    std::printf("%s\n\n", rows.back().c_str());
  }
  std::printf("| step | moved over the link | link-bound | graph replay p50 (vs link-bound) | old path p50 (vs link-bound) | "
              "host: PrepareStep + launch (each) | entries delivered/s | %d growing steps: wall p50 / p99 |\n",
              flags.growth_steps);
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (const std::string& row : rows) std::printf("%s\n", row.c_str());
  return 0;
}

}  // namespace
}  // namespace sparsepool::bench

int main(int argc, char** argv) { return sparsepool::bench::Main(argc, argv); }
