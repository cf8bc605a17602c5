/* sparsepool's C ABI: the client library for any language that can call C (the Python
 * package binds it with ctypes). One header, opaque handles, integer status codes with
 * messages. Link libsparsepool.so (bazel build //client/c:libsparsepool.so).
 *
 * Errors: every function that can fail returns 0 (SP_OK) or a canonical status code
 * (the gRPC / Abseil codes below); sp_last_error() then holds the message, which names
 * the bad value, for the calling thread until its next call.
 *
 * Threads: a client may be used from several threads at once; a session from one
 * thread at a time. Blocking calls (RPCs, CPU copies) hold no lock of the caller's.
 *
 * Streams are CUDA streams (cudaStream_t) passed as void*: NULL is the legacy default
 * stream. Device pointers are CUDA device pointers.
 *
 * The ABI only grows: functions and structs are added, never changed (a caller compiled
 * against an older header passes the smaller structs it knew); structs are set up by
 * their *_init function first, which fills defaults. SP_ABI_VERSION counts the
 * additions: a caller that needs a newer function checks sp_abi_version(). */
#ifndef SPARSEPOOL_CLIENT_C_SPARSEPOOL_H_
#define SPARSEPOOL_CLIENT_C_SPARSEPOOL_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SP_ABI_VERSION 3

enum sp_status_code {
  SP_OK = 0,
  SP_CANCELLED = 1,
  SP_UNKNOWN = 2,
  SP_INVALID_ARGUMENT = 3,
  SP_DEADLINE_EXCEEDED = 4,
  SP_NOT_FOUND = 5,
  SP_ALREADY_EXISTS = 6,
  SP_PERMISSION_DENIED = 7,
  SP_RESOURCE_EXHAUSTED = 8,
  SP_FAILED_PRECONDITION = 9,
  SP_ABORTED = 10,
  SP_OUT_OF_RANGE = 11,
  SP_UNIMPLEMENTED = 12,
  SP_INTERNAL = 13,
  SP_UNAVAILABLE = 14,
  SP_DATA_LOSS = 15,
  SP_UNAUTHENTICATED = 16
};

int sp_abi_version(void);
/* The message of this thread's last failed call; "" when the last call succeeded. */
const char* sp_last_error(void);

/* ---- Client: the control plane and the CPU data path ---- */

typedef struct sp_client sp_client;

typedef struct {
  const char* address;     /* the daemon, HOST:PORT; default "127.0.0.1:7070" */
  const char* client_id;   /* NULL or "": a unique one */
  const char* transport;   /* "cxl" (default), "ucx" or "verbs" */
  int copy_threads;        /* CPU copies' threads; default 1 */
  uint32_t keepalive_interval_ms;  /* the lease loop; 0 turns it off; default 5000 */
  uint32_t rpc_timeout_ms;         /* each control-plane call; default 10000 */
  const char* token;           /* the tenant's token for a daemon with tenants; NULL: none */
  const char* tls_root_certs;  /* PEM file of the daemon's CA; NULL: plaintext */
  const char* tls_cert;        /* PEM files of a client certificate and its key, for */
  const char* tls_key;         /* daemons that require one; NULL: none */
  /* Since ABI 3. The most bytes a second this client's fetches deliver, paced (a
   * tenant's share of the host's memory bandwidth); 0 (the default): unpaced. */
  uint64_t fetch_bytes_per_second;
} sp_client_options;

void sp_client_options_init(sp_client_options* options);
int sp_client_connect(const sp_client_options* options, sp_client** client);
/* Does not release the client's sequences; NULL is ignored. */
void sp_client_close(sp_client* client);
const char* sp_client_id(const sp_client* client);

typedef struct {
  uint32_t layers;
  uint32_t entry_bytes;
  uint64_t tokens;          /* room to allocate now */
  const char* tenant;       /* may be NULL */
  uint32_t page_tokens;     /* 0: the daemon's default (64) */
  uint32_t entry_alignment; /* 0: packed */
} sp_sequence_spec;

void sp_sequence_spec_init(sp_sequence_spec* spec);
int sp_sequence_create(sp_client* client, const sp_sequence_spec* spec, uint64_t* sequence);

/* Since ABI 2: where a new sequence's memory goes on a daemon with several regions
 * (CXL devices, NUMA nodes). */
typedef struct {
  /* The region to start in, among those serving the tenant: key modulo their number
   * (GPU rank r passes r, so that ranks start on different devices); -1 (the
   * default): the one with most free memory. */
  int64_t placement_key;
  /* Layers round robin over this many regions, read in parallel; 0 or 1: one region. */
  uint32_t stripes;
} sp_placement;

void sp_placement_init(sp_placement* placement);
/* sp_sequence_create with a placement (NULL: the defaults). */
int sp_sequence_create_placed(sp_client* client, const sp_sequence_spec* spec, const sp_placement* placement,
                              uint64_t* sequence);
/* Grows the sequence to `total_tokens` tokens (the same total is a no-op). */
int sp_sequence_extend(sp_client* client, uint64_t sequence, uint64_t total_tokens);
int sp_sequence_release(sp_client* client, uint64_t sequence);
/* Makes this client the sequence's owner (a prefill worker hands it to decode). */
int sp_sequence_adopt(sp_client* client, uint64_t sequence);

typedef struct {
  uint32_t layers;
  uint32_t entry_bytes;
  uint32_t page_tokens;
  uint64_t tokens;
  char tenant[64];  /* NUL-terminated; names are at most 63 bytes */
} sp_sequence_info;

/* Asks the daemon (and refreshes the client's cached layout). */
int sp_sequence_info_get(sp_client* client, uint64_t sequence, sp_sequence_info* info);

/* Stores entries of tokens [first_token, first_token + bytes / entry_bytes) of a layer
 * from host memory. */
int sp_write_entries(sp_client* client, uint64_t sequence, uint32_t layer, uint64_t first_token,
                     const void* entries, size_t bytes);
/* One layer's top-k for a batch into host memory: indices is [rows][k] int32 (-1 =
 * padding, its output left as it was); out is [rows][k][entry_bytes]. */
int sp_fetch_topk(sp_client* client, uint32_t layer, const uint64_t* sequences, size_t rows,
                  const int32_t* indices, size_t k, void* out, size_t out_bytes);

/* The same into GPU memory, over any transport: the entries are staged in pinned host
 * memory and copied onto `stream` (a cudaStream_t; NULL: the legacy default stream);
 * they are there once the stream reaches the copy. Padding positions receive zeros.
 * Not capturable in a CUDA graph (a captured step uses the decode session). Calls of
 * one client take turns here. Without a CUDA device: SP_FAILED_PRECONDITION. */
int sp_fetch_topk_device(sp_client* client, uint32_t layer, const uint64_t* sequences, size_t rows,
                         const int32_t* indices, size_t k, void* device_out, size_t out_bytes, void* stream);

/* What the client has counted since it connected, summed over its transports (the
 * per-transport and per-layer figures are in the text below). */
typedef struct {
  uint64_t fetch_calls;
  uint64_t fetch_errors;
  uint64_t entries_fetched;  /* selected entries delivered (padding not counted) */
  uint64_t bytes_fetched;
  uint64_t write_calls;
  uint64_t write_errors;
  uint64_t bytes_written;
  uint64_t layouts_refreshed;      /* cached layouts asked again: the sequence grew */
  uint64_t stale_layout_refusals;  /* data-plane calls refused on a layout that no longer held */
} sp_client_counters;

int sp_client_counters_get(const sp_client* client, sp_client_counters* counters);
/* The same, with each layer's fetch latency histogram, in Prometheus' text format
 * (sparsepool_client_*), for an engine's /metrics: writes at most `capacity` bytes
 * including a terminating NUL, and sets *length to the whole text's length without it;
 * SP_OUT_OF_RANGE when it did not fit (ask again with *length + 1). */
int sp_client_metrics_text(const sp_client* client, char* buffer, size_t capacity, size_t* length);

/* ---- GPU: regions registered once per process, and the decode session ----
 * Without a CUDA device these return SP_FAILED_PRECONDITION. */

typedef struct sp_gpu_regions sp_gpu_regions;

int sp_gpu_regions_create(sp_gpu_regions** regions);
/* REQUIRES: every session using it destroyed, no kernel reading its regions running. */
void sp_gpu_regions_destroy(sp_gpu_regions* regions);
/* Warm-up: registers the region holding `sequence` (pins it for the GPU) now. */
int sp_gpu_regions_register(sp_gpu_regions* regions, sp_client* client, uint64_t sequence);
uint64_t sp_gpu_regions_pinned_bytes(const sp_gpu_regions* regions);

typedef struct sp_session sp_session;

typedef struct {
  uint32_t max_batch;
  uint32_t layers;
  uint32_t entry_bytes;
  uint32_t k;
  uint64_t max_tokens;
  uint32_t page_tokens;      /* default 64 */
  uint32_t cache_slots;      /* residency cache slots per (row, layer); 0: none */
  uint32_t buffers;          /* without the cache: rotating entry buffers; default 3 */
  uint64_t reserve_tokens;   /* reserved ahead in the pool; default 1024 */
  uint32_t record_hits_ready;  /* nonzero: an event between a cached fetch's lookup and fill */
} sp_session_options;

void sp_session_options_init(sp_session_options* options);
int sp_session_create(sp_client* client, sp_gpu_regions* regions, const sp_session_options* options,
                      sp_session** session);
void sp_session_destroy(sp_session* session);

/* Between steps. */
int sp_session_join(sp_session* session, uint64_t sequence, uint64_t tokens, void* stream, uint32_t* row);
int sp_session_leave(sp_session* session, uint32_t row, void* stream);

typedef struct {
  uint32_t row;
  uint64_t sequence;
  int code;
  char message[256];
} sp_row_failure;

/* Before every step. Rows the session could not serve go to `failures` (at most
 * `capacity`; *count says how many); the return value is only for the session. A
 * failed row left the session when sp_session_row says it is not active or holds
 * another sequence (client/decode_session.h says which failures leave). */
int sp_session_prepare_step(sp_session* session, void* stream, sp_row_failure* failures, size_t capacity,
                            size_t* count);
int sp_session_seed_cache(sp_session* session, uint32_t layer, const int32_t* device_topk, void* stream);

/* The step: enqueued on `stream`, capturable in one CUDA graph. */
int sp_session_begin_step(sp_session* session, void* stream);
int sp_session_write_layer(sp_session* session, uint32_t layer, const void* device_entries, void* stream);
int sp_session_fetch_layer(sp_session* session, uint32_t layer, const int32_t* device_topk, void* stream);
int sp_session_end_step(sp_session* session, void* stream);

/* Where fetch_layer(layer) delivers: entries [entry_count][entry_bytes] in GPU memory and
 * [max_batch][k] int32 flat indices into them (-1: nothing). */
int sp_session_delivered(const sp_session* session, uint32_t layer, const void** entries, uint64_t* entry_count,
                         const int32_t** flat_indices);
/* With the cache and record_hits_ready: the event (cudaEvent_t) recorded when layer's
 * hits are in place, and where its misses are listed. */
int sp_session_hits_ready(const sp_session* session, uint32_t layer, void** event);
int sp_session_row(const sp_session* session, uint32_t row, int* active, uint64_t* sequence, uint64_t* tokens);
/* With the cache: its hits and misses so far over every (row, layer), for the engine's
 * metrics (waits for the device: call it between steps, not inside one);
 * SP_FAILED_PRECONDITION for a session without the cache. */
int sp_session_cache_counters(const sp_session* session, uint64_t* hits, uint64_t* misses);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* SPARSEPOOL_CLIENT_C_SPARSEPOOL_H_ */
