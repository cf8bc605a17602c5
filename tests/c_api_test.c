/* The C ABI from C, against a real daemon: the library as a C program links it
 * (libsparsepool.so), every call's happy path and its errors (codes and messages). */
#define _GNU_SOURCE
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/c/sparsepool.h"

extern char** environ;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; sp_last_error: \"%s\"\n", __FILE__, __LINE__, #cond, \
              sp_last_error());                                                                    \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)
#define CHECK_OK(call) CHECK((call) == SP_OK)
#define CHECK_ERROR(call, code, fragment) \
  do {                                    \
    CHECK((call) == (code));              \
    CHECK(strstr(sp_last_error(), (fragment)) != NULL); \
  } while (0)

static pid_t daemon_pid;
static char region_path[256];

static void stop_daemon(void) {
  if (daemon_pid > 0) {
    kill(daemon_pid, SIGTERM);
    waitpid(daemon_pid, NULL, 0);
  }
  unlink(region_path);
}

/* Starts sparsepoold on a shm region of its own; writes its address. */
static void start_daemon(char* address, size_t size) {
  const char* tmp = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
  char port_file[512], region[300], port_arg[600];
  snprintf(region_path, sizeof(region_path), "/dev/shm/sparsepool-c-api-test-%d", (int)getpid());
  snprintf(region, sizeof(region), "--region=shm:%s:64MiB", region_path);
  snprintf(port_file, sizeof(port_file), "%s/c-api-test-%d.port", tmp, (int)getpid());
  snprintf(port_arg, sizeof(port_arg), "--port_file=%s", port_file);
  unlink(port_file);
  char* argv[] = {"service/sparsepoold", "--listen=127.0.0.1:0", region, port_arg, "--reuse_grace=0s", NULL};
  CHECK(posix_spawn(&daemon_pid, argv[0], NULL, NULL, argv, environ) == 0);
  atexit(stop_daemon);
  for (int i = 0; i < 2000; ++i) {
    FILE* f = fopen(port_file, "r");
    int port = 0;
    if (f != NULL) {
      const int n = fscanf(f, "%d", &port);
      fclose(f);
      if (n == 1 && port > 0) {
        snprintf(address, size, "127.0.0.1:%d", port);
        return;
      }
    }
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    nanosleep(&ten_ms, NULL);
  }
  CHECK(!"the daemon did not start");
}

static void fill(unsigned char* entry, unsigned entry_bytes, uint64_t token) {
  for (unsigned b = 0; b < entry_bytes; ++b) entry[b] = (unsigned char)(token * 31 + b * 7 + 1);
}

int main(void) {
  CHECK(sp_abi_version() == SP_ABI_VERSION);
  char address[64];
  start_daemon(address, sizeof(address));

  /* Null handles and arguments are refused, saying which. */
  sp_client* client = NULL;
  CHECK_ERROR(sp_client_connect(NULL, &client), SP_INVALID_ARGUMENT, "options is null");
  CHECK_ERROR(sp_sequence_release(NULL, 1), SP_INVALID_ARGUMENT, "client is null");
  sp_client_close(NULL);

  sp_client_options options;
  sp_client_options_init(&options);
  CHECK(strcmp(options.transport, "cxl") == 0);
  options.address = address;
  options.transport = "carrier-pigeon";
  CHECK_ERROR(sp_client_connect(&options, &client), SP_INVALID_ARGUMENT, "unknown transport");
  options.transport = "cxl";
  CHECK_OK(sp_client_connect(&options, &client));
  CHECK(strcmp(sp_last_error(), "") == 0);
  CHECK(strlen(sp_client_id(client)) > 0);

  sp_sequence_spec spec;
  sp_sequence_spec_init(&spec);
  spec.layers = 2;
  spec.entry_bytes = 656;
  spec.tokens = 100;
  spec.tenant = "c";
  uint64_t seq = 0;
  CHECK_OK(sp_sequence_create(client, &spec, &seq));
  spec.layers = 0;
  uint64_t bad = 0;
  CHECK_ERROR(sp_sequence_create(client, &spec, &bad), SP_INVALID_ARGUMENT, "layers 0 is out of range");

  sp_sequence_info info;
  CHECK_OK(sp_sequence_info_get(client, seq, &info));
  CHECK(info.layers == 2 && info.entry_bytes == 656 && info.tokens == 100 && info.page_tokens == 64);
  CHECK(strcmp(info.tenant, "c") == 0);

  static unsigned char entries[100 * 656];
  for (uint64_t t = 0; t < 100; ++t) fill(entries + t * 656, 656, t);
  CHECK_OK(sp_write_entries(client, seq, 1, 0, entries, sizeof(entries)));
  CHECK_ERROR(sp_write_entries(client, seq, 1, 99, entries, 2 * 656), SP_INVALID_ARGUMENT, "extend the sequence first");

  const int32_t indices[4] = {5, -1, 99, 0};
  static unsigned char out[4 * 656];
  memset(out, 0xEE, sizeof(out));
  CHECK_OK(sp_fetch_topk(client, 1, &seq, 1, indices, 4, out, sizeof(out)));
  unsigned char expected[656];
  for (int i = 0; i < 4; ++i) {
    if (indices[i] < 0) {
      for (int b = 0; b < 656; ++b) CHECK(out[i * 656 + b] == 0xEE); /* padding left as it was */
      continue;
    }
    fill(expected, 656, (uint64_t)indices[i]);
    CHECK(memcmp(out + i * 656, expected, 656) == 0);
  }
  const int32_t past[1] = {100};
  CHECK_ERROR(sp_fetch_topk(client, 1, &seq, 1, past, 1, out, 656), SP_INVALID_ARGUMENT, "past the 100 tokens");
  CHECK_ERROR(sp_fetch_topk(client, 1, &seq, 1, indices, 4, out, 100), SP_INVALID_ARGUMENT, "output buffer of 100 bytes");

  CHECK_OK(sp_sequence_extend(client, seq, 300));
  CHECK_ERROR(sp_sequence_extend(client, seq, 200), SP_INVALID_ARGUMENT, "cannot shrink");
  CHECK_ERROR(sp_sequence_release(client, 987654), SP_NOT_FOUND, "unknown sequence 987654");

  /* A second client adopts the sequence (prefill -> decode hand-off), then releases it. */
  sp_client* decode = NULL;
  options.client_id = "c-api-decode";
  CHECK_OK(sp_client_connect(&options, &decode));
  CHECK(strcmp(sp_client_id(decode), "c-api-decode") == 0);
  CHECK_OK(sp_sequence_adopt(decode, seq));
  CHECK_OK(sp_sequence_release(decode, seq));
  CHECK_ERROR(sp_fetch_topk(client, 1, &seq, 1, indices, 4, out, sizeof(out)), SP_NOT_FOUND, "released");

  /* What the client counted: four fetches (one delivered 3 entries; the index past the
   * tokens and the short buffer were refused, and so was the released sequence's), two
   * writes (one refused), two layouts asked again because a call named tokens past them,
   * one refused because the sequence was released under it. */
  sp_client_counters counters;
  CHECK_OK(sp_client_counters_get(client, &counters));
  CHECK(counters.fetch_calls == 4 && counters.fetch_errors == 3);
  CHECK(counters.entries_fetched == 3 && counters.bytes_fetched == 3 * 656);
  CHECK(counters.write_calls == 2 && counters.write_errors == 1 && counters.bytes_written == 100 * 656);
  CHECK(counters.layouts_refreshed == 2 && counters.stale_layout_refusals == 1);
  size_t length = 0;
  char small[8];
  CHECK_ERROR(sp_client_metrics_text(client, small, sizeof(small), &length), SP_OUT_OF_RANGE, "the buffer holds 8");
  CHECK(length > sizeof(small) && small[0] == '\0');
  char* text = malloc(length + 1);
  CHECK_OK(sp_client_metrics_text(client, text, length + 1, &length));
  CHECK(strlen(text) == length);
  CHECK(strstr(text, "sparsepool_client_fetched_bytes_total{transport=\"cxl\"} 1968\n") != NULL);
  CHECK(strstr(text, "sparsepool_client_fetch_duration_seconds_count{layer=\"1\"} 1\n") != NULL);
  free(text);

  /* The GPU path: without a CUDA device it says so; with one, a registry is made. */
  sp_gpu_regions* regions = NULL;
  const int gpu = sp_gpu_regions_create(&regions);
  if (gpu == SP_FAILED_PRECONDITION) {
    CHECK(strstr(sp_last_error(), "no CUDA device") != NULL);
    static unsigned char not_gpu_memory[4 * 656];
    CHECK_ERROR(sp_fetch_topk_device(client, 1, &seq, 1, indices, 4, not_gpu_memory, sizeof(not_gpu_memory), NULL),
                SP_FAILED_PRECONDITION, "no CUDA device");
    printf("no CUDA device: the C ABI's GPU calls were checked for their refusal only\n");
  } else {
    CHECK(gpu == SP_OK);
    sp_session_options so;
    sp_session_options_init(&so);
    sp_session* session = NULL;
    CHECK_ERROR(sp_session_create(client, regions, &so, &session), SP_INVALID_ARGUMENT, "max_batch 0");
    sp_gpu_regions_destroy(regions);
  }

  sp_client_close(decode);
  sp_client_close(client);
  printf("C ABI test passed\n");
  return 0;
}
