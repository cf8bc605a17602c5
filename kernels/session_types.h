// The device-side state of a decode session (client/decode_session.h) that its step
// kernels read and write: plain structs shared by the host code and the CUDA kernels.
#ifndef SPARSEPOOL_KERNELS_SESSION_TYPES_H_
#define SPARSEPOOL_KERNELS_SESSION_TYPES_H_

#include <cstddef>
#include <cstdint>

#include "kernels/gather_types.h"

namespace sparsepool::kernels {

// One batch row as the step kernels see it (device memory, [max_batch]).
struct SessionRow {
  uint64_t capacity_tokens;  // tokens whose pages are in the row's device page table
  uint32_t active;           // 0: a free row, skipped by every kernel
  uint32_t reserved;
};

// What the step reports back, per row, in mapped pinned host memory the host reads
// between steps without waiting on the GPU. Flags stay set until the host clears them.
struct SessionRowReport {
  uint32_t released;     // the sequence's record no longer showed it live at a step's end
  uint32_t out_of_room;  // a step found no page for the token it appends
};

struct SessionStepArgs {
  RowPages* rows = nullptr;            // device [layers][max_batch]
  const SessionRow* session_rows = nullptr;  // device [max_batch]
  SessionRowReport* reports = nullptr;  // mapped host [max_batch]
  uint32_t* step_counter = nullptr;     // device; the residency cache reads it
  unsigned long long* steps_done = nullptr;  // mapped host: steps whose end has run
  uint32_t max_batch = 0;
  uint32_t layers = 0;
};

}  // namespace sparsepool::kernels

#endif  // SPARSEPOOL_KERNELS_SESSION_TYPES_H_
