// The host-side bookkeeping of a decode session's rows (client/decode_session.h), with
// no CUDA in it so that CI tests it on the CPU: which rows are taken, each row's tokens
// after the steps prepared so far, the pages its device page table holds, the tokens
// the pool holds for it, the reservations in flight, and the decisions a step needs
// (reserve ahead, upload pages [from, to), wait for a reservation, or drop the row).
// DecodeSession carries the decisions out on the GPU and through the client.
//
// Thread-compatible.
#ifndef SPARSEPOOL_CLIENT_SESSION_ROWS_H_
#define SPARSEPOOL_CLIENT_SESSION_ROWS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/layout.h"
#include "kernels/session_types.h"

namespace sparsepool {

struct SessionShape {
  uint32_t max_batch = 0;
  uint32_t layers = 0;
  uint32_t entry_bytes = 0;
  uint32_t page_tokens = 0;
  uint64_t max_tokens = 0;
  uint64_t reserve_tokens = 0;  // reserved in the pool ahead of a row's need
};

class SessionRows {
 public:
  // Page-table entries [from, to) of every layer that the device lacks.
  struct PageRange {
    uint64_t from = 0;
    uint64_t to = 0;
    bool empty() const { return to <= from; }
  };
  // An ExtendSequence a row needs: grow `id` to `tokens`, and hand the layout back to
  // ApplyReservation with this generation (a row that changed hands meanwhile ignores it).
  struct Reservation {
    uint32_t row;
    uint64_t generation;
    SequenceId id;
    uint64_t tokens;
  };

  explicit SessionRows(const SessionShape& shape);

  const SessionShape& shape() const { return shape_; }
  uint64_t max_pages() const { return max_pages_; }

  // The tokens a joining sequence should hold in the pool before it joins with `tokens`
  // written: room for its first steps.
  uint64_t InitialReservation(uint64_t tokens) const;
  // Takes a free row for sequence `layout` whose first `tokens` tokens are written.
  // InvalidArgument for a shape the session does not take or too few tokens;
  // ResourceExhausted when every row is taken. Returns the row; the pages the device
  // needs for it are DevicePagesToUpload(row). `stripe_devices`: where the GPU
  // addresses each of the layout's stripe regions (one, unless it is striped).
  absl::StatusOr<uint32_t> Join(std::shared_ptr<const SequenceLayout> layout, uint64_t tokens,
                                absl::Span<const std::byte* const> stripe_devices);
  void Leave(uint32_t row);

  bool active(uint32_t row) const { return rows_[row].active; }
  SequenceId sequence(uint32_t row) const { return rows_[row].id; }
  uint64_t tokens(uint32_t row) const { return rows_[row].tokens; }
  uint64_t reserved(uint32_t row) const { return rows_[row].reserved; }
  uint64_t device_pages(uint32_t row) const { return rows_[row].device_pages; }
  bool reserving(uint32_t row) const { return rows_[row].reserving; }
  // REQUIRES: active(row).
  const SequenceLayout& layout(uint32_t row) const { return *rows_[row].layout; }
  // Tokens the row may reach with what the device holds.
  uint64_t capacity(uint32_t row) const;

  // The pages of the row's current layout the device page table lacks; marks them as
  // uploaded (the caller uploads them).
  PageRange TakePagesToUpload(uint32_t row);
  // The row's table in every layer, as the kernels read it: page_offsets point into the
  // device page tables at `row_pages` + layer * max_pages() (null for a free row).
  std::vector<kernels::RowPages> RowTables(uint32_t row, const uint64_t* row_pages) const;
  kernels::SessionRow DeviceRow(uint32_t row) const;

  // A reservation the row should start now, if any (its reserve ran below half of
  // reserve_tokens); marks the row reserving. After a failed one the row waits
  // kReservationRetry before it asks again, unless its room runs low meanwhile (under
  // a quarter of reserve_tokens). `now`: a monotonic clock's.
  std::optional<Reservation> ReservationDue(uint32_t row, absl::Time now);
  static constexpr absl::Duration kReservationRetry = absl::Milliseconds(100);
  // A finished reservation: its layout becomes the row's (the caller then uploads
  // TakePagesToUpload). False when the row changed hands since (nothing changes).
  bool ApplyReservation(const Reservation& reservation, std::shared_ptr<const SequenceLayout> layout);
  // Whether the reservation was made for the row's present occupant (it has not left
  // or changed hands since).
  bool Current(const Reservation& reservation) const {
    const Row& r = rows_[reservation.row];
    return r.active && r.generation == reservation.generation;
  }
  // A reservation that failed at `now`: the row steps on while it has room and asks
  // again (ReservationDue); `why` is kept for the step that finds none
  // (reservation_error).
  void ReservationFailed(const Reservation& reservation, absl::Status why, absl::Time now);
  // Why the row's last reservation failed; OK when none failed since it joined or since
  // one succeeded.
  const absl::Status& reservation_error(uint32_t row) const { return rows_[row].reservation_error; }

  // Whether the row can take the next step as the device stands.
  enum class StepReadiness { kReady, kWaitForReservation, kNoRoom, kPastMaxTokens };
  StepReadiness Readiness(uint32_t row) const;
  // The row takes one token more (what the step's first kernel does on the device).
  void Advance(uint32_t row) { ++rows_[row].tokens; }

 private:
  struct Row {
    bool active = false;
    SequenceId id = 0;
    uint64_t generation = 0;    // bumped at every join and leave
    uint64_t tokens = 0;        // after the steps prepared so far
    uint64_t device_pages = 0;  // pages per layer in the device page table
    uint64_t reserved = 0;      // tokens the pool holds for the sequence
    bool reserving = false;
    absl::Status reservation_error;  // the last failed reservation's, until one succeeds
    absl::Time retry_after = absl::InfinitePast();  // a failed reservation's backoff
    std::shared_ptr<const SequenceLayout> layout;
    std::vector<const std::byte*> stripe_devices;  // by stripe; layer l reads stripe l % size
  };

  const SessionShape shape_;
  const uint64_t max_pages_;
  std::vector<Row> rows_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_CLIENT_SESSION_ROWS_H_
