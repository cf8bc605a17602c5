// The C ABI (client/c/sparsepool.h) over the C++ client and decode session. Every entry
// point turns absl::Status into a code and this thread's message, and never lets a C++
// exception or a null handle through.
#include "client/c/sparsepool.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "absl/synchronization/mutex.h"
#include "client/decode_session.h"
#include "client/device_fetch.h"
#include "client/gpu_regions.h"
#include "client/sparsepool_client.h"

struct sp_client {
  std::unique_ptr<sparsepool::Client> client;
  // sp_fetch_topk_device's staging, made on its first call; one call at a time.
  absl::Mutex device_mu;
  std::unique_ptr<sparsepool::DeviceFetcher> device ABSL_GUARDED_BY(device_mu);
};

struct sp_gpu_regions {
  std::unique_ptr<sparsepool::GpuRegionRegistry> registry;
};

struct sp_session {
  std::unique_ptr<sparsepool::DecodeSession> session;
};

namespace {

thread_local std::string last_error;

int Report(const absl::Status& status) {
  last_error = status.ok() ? std::string() : std::string(status.message());
  return static_cast<int>(status.code());
}

int Null(const char* what) { return Report(absl::InvalidArgumentError(absl::StrCat(what, " is null"))); }

cudaStream_t Stream(void* stream) { return static_cast<cudaStream_t>(stream); }

// Runs `body`, which returns an absl::Status, reporting what it returns or throws.
template <typename Body>
int Guard(Body body) {
  try {
    return Report(body());
  } catch (const std::exception& e) {
    return Report(absl::InternalError(absl::StrCat("unexpected C++ exception: ", e.what())));
  } catch (...) {
    return Report(absl::InternalError("unexpected C++ exception"));
  }
}

}  // namespace

extern "C" {

int sp_abi_version(void) { return SP_ABI_VERSION; }

const char* sp_last_error(void) { return last_error.c_str(); }

void sp_client_options_init(sp_client_options* options) {
  if (options == nullptr) return;
  *options = sp_client_options{};
  options->address = "127.0.0.1:7070";
  options->transport = "cxl";
  options->copy_threads = 1;
  options->keepalive_interval_ms = 5000;
  options->rpc_timeout_ms = 10000;
}

int sp_client_connect(const sp_client_options* options, sp_client** client) {
  if (options == nullptr) return Null("options");
  if (client == nullptr) return Null("client");
  *client = nullptr;
  return Guard([&]() -> absl::Status {
    sparsepool::ClientOptions o;
    if (options->address != nullptr) o.address = options->address;
    if (options->client_id != nullptr) o.client_id = options->client_id;
    if (options->transport != nullptr) o.transport = options->transport;
    o.copy_threads = options->copy_threads;
    o.keepalive_interval = absl::Milliseconds(options->keepalive_interval_ms);
    o.rpc_timeout = absl::Milliseconds(options->rpc_timeout_ms);
    if (options->token != nullptr) o.token = options->token;
    if (options->tls_root_certs != nullptr) o.tls_root_certs = options->tls_root_certs;
    if (options->tls_cert != nullptr) o.tls_cert = options->tls_cert;
    if (options->tls_key != nullptr) o.tls_key = options->tls_key;
    o.fetch_bytes_per_second = options->fetch_bytes_per_second;
    auto connected = sparsepool::Client::Connect(o);
    if (!connected.ok()) return connected.status();
    *client = new sp_client{*std::move(connected)};
    return absl::OkStatus();
  });
}

void sp_client_close(sp_client* client) { delete client; }

const char* sp_client_id(const sp_client* client) {
  return client == nullptr ? "" : client->client->client_id().c_str();
}

void sp_sequence_spec_init(sp_sequence_spec* spec) {
  if (spec != nullptr) *spec = sp_sequence_spec{};
}

void sp_placement_init(sp_placement* placement) {
  if (placement != nullptr) {
    *placement = sp_placement{};
    placement->placement_key = -1;
  }
}

int sp_sequence_create(sp_client* client, const sp_sequence_spec* spec, uint64_t* sequence) {
  return sp_sequence_create_placed(client, spec, nullptr, sequence);
}

int sp_sequence_create_placed(sp_client* client, const sp_sequence_spec* spec, const sp_placement* placement,
                              uint64_t* sequence) {
  if (client == nullptr) return Null("client");
  if (spec == nullptr) return Null("spec");
  if (sequence == nullptr) return Null("sequence");
  return Guard([&]() -> absl::Status {
    sparsepool::SequenceSpec s;
    s.layers = spec->layers;
    s.entry_bytes = spec->entry_bytes;
    s.tokens = spec->tokens;
    if (spec->tenant != nullptr) s.tenant = spec->tenant;
    s.page_tokens = spec->page_tokens;
    s.entry_alignment = spec->entry_alignment;
    if (placement != nullptr) {
      if (placement->placement_key < -1 || placement->placement_key > int64_t{UINT32_MAX}) {
        return absl::InvalidArgumentError(absl::StrCat("placement_key ", placement->placement_key,
                                                       " is outside [0, 2^32 - 1] (or -1: none)"));
      }
      if (placement->placement_key >= 0) s.placement_key = static_cast<uint32_t>(placement->placement_key);
      s.stripes = placement->stripes;
    }
    auto id = client->client->CreateSequence(s);
    if (!id.ok()) return id.status();
    *sequence = *id;
    return absl::OkStatus();
  });
}

int sp_sequence_extend(sp_client* client, uint64_t sequence, uint64_t total_tokens) {
  if (client == nullptr) return Null("client");
  return Guard([&] { return client->client->ExtendSequence(sequence, total_tokens); });
}

int sp_sequence_release(sp_client* client, uint64_t sequence) {
  if (client == nullptr) return Null("client");
  return Guard([&] { return client->client->ReleaseSequence(sequence); });
}

int sp_sequence_adopt(sp_client* client, uint64_t sequence) {
  if (client == nullptr) return Null("client");
  return Guard([&] { return client->client->AdoptSequence(sequence); });
}

int sp_sequence_info_get(sp_client* client, uint64_t sequence, sp_sequence_info* info) {
  if (client == nullptr) return Null("client");
  if (info == nullptr) return Null("info");
  return Guard([&]() -> absl::Status {
    auto got = client->client->Info(sequence);
    if (!got.ok()) return got.status();
    info->layers = got->layers;
    info->entry_bytes = got->entry_bytes;
    info->page_tokens = got->page_tokens;
    info->tokens = got->tokens;
    const size_t n = std::min(got->tenant.size(), sizeof(info->tenant) - 1);
    std::memcpy(info->tenant, got->tenant.data(), n);
    info->tenant[n] = '\0';
    return absl::OkStatus();
  });
}

int sp_write_entries(sp_client* client, uint64_t sequence, uint32_t layer, uint64_t first_token,
                     const void* entries, size_t bytes) {
  if (client == nullptr) return Null("client");
  if (entries == nullptr && bytes != 0) return Null("entries");
  return Guard([&] {
    return client->client->WriteEntries(sequence, layer, first_token,
                                         absl::MakeConstSpan(static_cast<const std::byte*>(entries), bytes));
  });
}

int sp_fetch_topk(sp_client* client, uint32_t layer, const uint64_t* sequences, size_t rows, const int32_t* indices,
                  size_t k, void* out, size_t out_bytes) {
  if (client == nullptr) return Null("client");
  if (rows != 0 && (sequences == nullptr || (k != 0 && indices == nullptr))) return Null("sequences or indices");
  if (out == nullptr && out_bytes != 0) return Null("out");
  return Guard([&] {
    return client->client->FetchTopK(layer, absl::MakeConstSpan(sequences, rows), absl::MakeConstSpan(indices, rows * k),
                                     absl::MakeSpan(static_cast<std::byte*>(out), out_bytes));
  });
}

int sp_fetch_topk_device(sp_client* client, uint32_t layer, const uint64_t* sequences, size_t rows,
                         const int32_t* indices, size_t k, void* device_out, size_t out_bytes, void* stream) {
  if (client == nullptr) return Null("client");
  if (rows != 0 && (sequences == nullptr || (k != 0 && indices == nullptr))) return Null("sequences or indices");
  return Guard([&]() -> absl::Status {
    absl::MutexLock lock(&client->device_mu);
    if (client->device == nullptr) {
      auto fetcher = sparsepool::DeviceFetcher::Create(client->client.get());
      if (!fetcher.ok()) return fetcher.status();
      client->device = *std::move(fetcher);
    }
    return client->device->FetchTopK(layer, absl::MakeConstSpan(sequences, rows),
                                     absl::MakeConstSpan(indices, rows * k), device_out, out_bytes,
                                     static_cast<cudaStream_t>(stream));
  });
}

int sp_client_counters_get(const sp_client* client, sp_client_counters* counters) {
  if (client == nullptr) return Null("client");
  if (counters == nullptr) return Null("counters");
  return Guard([&] {
    const sparsepool::ClientMetrics metrics = client->client->Metrics();
    sparsepool::TransportCounters sum;
    for (const auto& [name, transport] : metrics.transports) sum.Add(transport);
    *counters = sp_client_counters{sum.fetch_calls,   sum.fetch_errors,  sum.entries_fetched,
                                   sum.bytes_fetched, sum.write_calls,   sum.write_errors,
                                   sum.bytes_written, metrics.layouts_refreshed, metrics.stale_layout_refusals};
    return absl::OkStatus();
  });
}

int sp_client_metrics_text(const sp_client* client, char* buffer, size_t capacity, size_t* length) {
  if (client == nullptr) return Null("client");
  if (length == nullptr) return Null("length");
  if (buffer == nullptr && capacity != 0) return Null("buffer");
  return Guard([&]() -> absl::Status {
    const std::string text = sparsepool::ClientMetricsText(client->client->Metrics());
    *length = text.size();
    if (text.size() >= capacity) {
      if (capacity != 0) buffer[0] = '\0';
      return absl::OutOfRangeError(absl::StrCat("the metrics text is ", text.size(), " bytes; the buffer holds ",
                                                capacity, " with the terminating NUL"));
    }
    std::memcpy(buffer, text.data(), text.size());
    buffer[text.size()] = '\0';
    return absl::OkStatus();
  });
}

int sp_gpu_regions_create(sp_gpu_regions** regions) {
  if (regions == nullptr) return Null("regions");
  *regions = nullptr;
  return Guard([&]() -> absl::Status {
    auto registry = sparsepool::GpuRegionRegistry::Create();
    if (!registry.ok()) return registry.status();
    *regions = new sp_gpu_regions{*std::move(registry)};
    return absl::OkStatus();
  });
}

void sp_gpu_regions_destroy(sp_gpu_regions* regions) { delete regions; }

int sp_gpu_regions_register(sp_gpu_regions* regions, sp_client* client, uint64_t sequence) {
  if (regions == nullptr) return Null("regions");
  if (client == nullptr) return Null("client");
  return Guard([&]() -> absl::Status {
    return regions->registry->RegisterRegionOf(*client->client, sequence);
  });
}

uint64_t sp_gpu_regions_pinned_bytes(const sp_gpu_regions* regions) {
  return regions == nullptr ? 0 : regions->registry->pinned_bytes();
}

void sp_session_options_init(sp_session_options* options) {
  if (options == nullptr) return;
  const sparsepool::DecodeSessionOptions defaults;
  *options = sp_session_options{};
  options->page_tokens = defaults.page_tokens;
  options->buffers = defaults.buffers;
  options->reserve_tokens = defaults.reserve_tokens;
}

int sp_session_create(sp_client* client, sp_gpu_regions* regions, const sp_session_options* options,
                      sp_session** session) {
  if (client == nullptr) return Null("client");
  if (regions == nullptr) return Null("regions");
  if (options == nullptr) return Null("options");
  if (session == nullptr) return Null("session");
  *session = nullptr;
  return Guard([&]() -> absl::Status {
    sparsepool::DecodeSessionOptions o;
    o.max_batch = options->max_batch;
    o.layers = options->layers;
    o.entry_bytes = options->entry_bytes;
    o.k = options->k;
    o.max_tokens = options->max_tokens;
    o.page_tokens = options->page_tokens;
    o.cache_slots = options->cache_slots;
    o.buffers = options->buffers;
    o.reserve_tokens = options->reserve_tokens;
    o.record_hits_ready = options->record_hits_ready != 0;
    auto created = sparsepool::DecodeSession::Create(client->client.get(), regions->registry.get(), o);
    if (!created.ok()) return created.status();
    *session = new sp_session{*std::move(created)};
    return absl::OkStatus();
  });
}

void sp_session_destroy(sp_session* session) { delete session; }

int sp_session_join(sp_session* session, uint64_t sequence, uint64_t tokens, void* stream, uint32_t* row) {
  if (session == nullptr) return Null("session");
  if (row == nullptr) return Null("row");
  return Guard([&]() -> absl::Status {
    auto joined = session->session->Join(sequence, tokens, Stream(stream));
    if (!joined.ok()) return joined.status();
    *row = *joined;
    return absl::OkStatus();
  });
}

int sp_session_leave(sp_session* session, uint32_t row, void* stream) {
  if (session == nullptr) return Null("session");
  return Guard([&] { return session->session->Leave(row, Stream(stream)); });
}

int sp_session_prepare_step(sp_session* session, void* stream, sp_row_failure* failures, size_t capacity,
                            size_t* count) {
  if (session == nullptr) return Null("session");
  if (count == nullptr) return Null("count");
  if (failures == nullptr && capacity != 0) return Null("failures");
  *count = 0;
  return Guard([&]() -> absl::Status {
    std::vector<sparsepool::DecodeSession::RowFailure> found;
    absl::Status prepared = session->session->PrepareStep(Stream(stream), &found);
    for (const auto& f : found) {
      if (*count == capacity) break;
      sp_row_failure& out = failures[(*count)++];
      out.row = f.row;
      out.sequence = f.sequence;
      out.code = static_cast<int>(f.status.code());
      const std::string message(f.status.message());
      const size_t n = std::min(message.size(), sizeof(out.message) - 1);
      std::memcpy(out.message, message.data(), n);
      out.message[n] = '\0';
    }
    return prepared;
  });
}

int sp_session_seed_cache(sp_session* session, uint32_t layer, const int32_t* device_topk, void* stream) {
  if (session == nullptr) return Null("session");
  return Guard([&] { return session->session->SeedCache(layer, device_topk, Stream(stream)); });
}

int sp_session_begin_step(sp_session* session, void* stream) {
  if (session == nullptr) return Null("session");
  return Guard([&] { return session->session->BeginStep(Stream(stream)); });
}

int sp_session_write_layer(sp_session* session, uint32_t layer, const void* device_entries, void* stream) {
  if (session == nullptr) return Null("session");
  return Guard([&] {
    return session->session->WriteLayer(layer, static_cast<const std::byte*>(device_entries), Stream(stream));
  });
}

int sp_session_fetch_layer(sp_session* session, uint32_t layer, const int32_t* device_topk, void* stream) {
  if (session == nullptr) return Null("session");
  return Guard([&] { return session->session->FetchLayer(layer, device_topk, Stream(stream)); });
}

int sp_session_end_step(sp_session* session, void* stream) {
  if (session == nullptr) return Null("session");
  return Guard([&] { return session->session->EndStep(Stream(stream)); });
}

int sp_session_delivered(const sp_session* session, uint32_t layer, const void** entries, uint64_t* entry_count,
                         const int32_t** flat_indices) {
  if (session == nullptr) return Null("session");
  if (entries == nullptr || entry_count == nullptr || flat_indices == nullptr) return Null("an output");
  if (layer >= session->session->options().layers) {
    return Report(absl::InvalidArgumentError(
        absl::StrCat("layer ", layer, " is out of range (", session->session->options().layers, " layers)")));
  }
  const sparsepool::DecodeSession::Delivery d = session->session->delivered(layer);
  *entries = d.entries;
  *entry_count = d.entry_count;
  *flat_indices = d.flat_indices;
  return Report(absl::OkStatus());
}

int sp_session_hits_ready(const sp_session* session, uint32_t layer, void** event) {
  if (session == nullptr) return Null("session");
  if (event == nullptr) return Null("event");
  if (layer >= session->session->options().layers) {
    return Report(absl::InvalidArgumentError(absl::StrCat("layer ", layer, " is out of range")));
  }
  *event = session->session->hits_ready(layer);
  if (*event == nullptr) {
    return Report(absl::FailedPreconditionError(
        "the session records no hits-ready events: create it with a cache and record_hits_ready"));
  }
  return Report(absl::OkStatus());
}

int sp_session_row(const sp_session* session, uint32_t row, int* active, uint64_t* sequence, uint64_t* tokens) {
  if (session == nullptr) return Null("session");
  if (active == nullptr || sequence == nullptr || tokens == nullptr) return Null("an output");
  if (row >= session->session->options().max_batch) {
    return Report(absl::InvalidArgumentError(
        absl::StrCat("row ", row, " is out of range (", session->session->options().max_batch, " rows)")));
  }
  *active = session->session->active(row) ? 1 : 0;
  *sequence = session->session->sequence(row);
  *tokens = session->session->tokens(row);
  return Report(absl::OkStatus());
}

int sp_session_cache_counters(const sp_session* session, uint64_t* hits, uint64_t* misses) {
  if (session == nullptr) return Null("session");
  if (hits == nullptr || misses == nullptr) return Null("an output");
  return Guard([&]() -> absl::Status {
    auto counters = session->session->cache_counters();
    if (!counters.ok()) return counters.status();
    *hits = counters->hits;
    *misses = counters->misses;
    return absl::OkStatus();
  });
}

}  // extern "C"
