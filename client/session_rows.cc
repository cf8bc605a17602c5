#include "client/session_rows.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace sparsepool {

SessionRows::SessionRows(const SessionShape& shape)
    : shape_(shape), max_pages_((shape.max_tokens + shape.page_tokens - 1) / shape.page_tokens), rows_(shape.max_batch) {}

uint64_t SessionRows::InitialReservation(uint64_t tokens) const {
  return std::min(shape_.max_tokens, tokens + shape_.reserve_tokens);
}

absl::StatusOr<uint32_t> SessionRows::Join(std::shared_ptr<const SequenceLayout> layout, uint64_t tokens,
                                           absl::Span<const std::byte* const> stripe_devices) {
  const SequenceLayout& l = *layout;
  if (stripe_devices.size() != l.stripes()) {
    return absl::InvalidArgumentError(absl::StrCat("sequence ", l.sequence_id, " has ", l.stripes(),
                                                   " stripe region(s), and ", stripe_devices.size(),
                                                   " device address(es) came for them"));
  }
  if (l.layers != shape_.layers || l.entry_bytes != shape_.entry_bytes || l.page_tokens != shape_.page_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sequence ", l.sequence_id, " has ", l.layers, " layers, entry_bytes ", l.entry_bytes, ", page_tokens ",
        l.page_tokens, "; the session takes ", shape_.layers, ", ", shape_.entry_bytes, ", ", shape_.page_tokens));
  }
  if (tokens > shape_.max_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("sequence ", l.sequence_id, " joins with ", tokens,
                                                   " tokens, above the session's max_tokens ", shape_.max_tokens));
  }
  if (l.tokens < tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("sequence ", l.sequence_id, " holds ", l.tokens, " tokens, fewer than the ", tokens, " it joins with"));
  }
  uint32_t row = 0;
  while (row < rows_.size() && rows_[row].active) ++row;
  if (row == rows_.size()) {
    return absl::ResourceExhaustedError(absl::StrCat("every one of the session's ", rows_.size(), " rows is taken"));
  }
  Row& r = rows_[row];
  r.active = true;
  r.id = l.sequence_id;
  ++r.generation;
  r.tokens = tokens;
  r.device_pages = 0;
  r.reserved = l.tokens;
  r.reserving = false;
  r.reservation_error = absl::OkStatus();
  r.retry_after = absl::InfinitePast();
  r.layout = std::move(layout);
  r.stripe_devices.assign(stripe_devices.begin(), stripe_devices.end());
  return row;
}

void SessionRows::Leave(uint32_t row) {
  Row& r = rows_[row];
  r.active = false;
  ++r.generation;
  r.reserving = false;
  r.reservation_error = absl::OkStatus();
  r.retry_after = absl::InfinitePast();
  r.layout.reset();
}

uint64_t SessionRows::capacity(uint32_t row) const {
  const Row& r = rows_[row];
  return std::min(r.reserved, r.device_pages * shape_.page_tokens);
}

SessionRows::PageRange SessionRows::TakePagesToUpload(uint32_t row) {
  Row& r = rows_[row];
  if (!r.active) return PageRange{};
  const uint64_t pages = std::min<uint64_t>(r.layout->pages_per_layer, max_pages_);
  PageRange range{r.device_pages, pages};
  r.device_pages = std::max(r.device_pages, pages);
  return range;
}

std::vector<kernels::RowPages> SessionRows::RowTables(uint32_t row, const uint64_t* row_pages) const {
  const Row& r = rows_[row];
  std::vector<kernels::RowPages> tables(shape_.layers);
  for (uint32_t layer = 0; layer < shape_.layers; ++layer) {
    kernels::RowPages& t = tables[layer];
    t = kernels::RowPages{};
    if (!r.active) continue;  // a null page table: the row is free
    t.page_offsets = row_pages + uint64_t{layer} * max_pages_;
    t.tokens = r.tokens;
    t.page_tokens = r.layout->page_tokens;
    t.entry_stride = r.layout->entry_stride;
    t.sequence_id = r.id;
    t.record_offset = r.layout->record_offset;
    // A striped sequence's layers read their stripe's region, and every record check
    // (the write-back's, the step's end) the home region's.
    t.region = r.stripe_devices[layer % r.stripe_devices.size()];
    t.record_region = r.stripe_devices[0];
  }
  return tables;
}

kernels::SessionRow SessionRows::DeviceRow(uint32_t row) const {
  kernels::SessionRow device_row{};
  if (rows_[row].active) {
    device_row.active = 1;
    device_row.capacity_tokens = capacity(row);
  }
  return device_row;
}

std::optional<SessionRows::Reservation> SessionRows::ReservationDue(uint32_t row, absl::Time now) {
  Row& r = rows_[row];
  if (!r.active || r.reserving || r.reserved >= shape_.max_tokens) return std::nullopt;
  if (r.reserved >= r.tokens + 1 + shape_.reserve_tokens / 2) return std::nullopt;
  // A pool that refused a moment ago is not asked again every step while there is room.
  if (now < r.retry_after && capacity(row) >= r.tokens + 1 + shape_.reserve_tokens / 4) return std::nullopt;
  r.reserving = true;
  return Reservation{row, r.generation, r.id, std::min(shape_.max_tokens, r.reserved + shape_.reserve_tokens)};
}

bool SessionRows::ApplyReservation(const Reservation& reservation, std::shared_ptr<const SequenceLayout> layout) {
  Row& r = rows_[reservation.row];
  if (!r.active || r.generation != reservation.generation) return false;
  r.reserving = false;
  r.reservation_error = absl::OkStatus();
  r.retry_after = absl::InfinitePast();
  r.layout = std::move(layout);
  r.reserved = r.layout->tokens;
  return true;
}

void SessionRows::ReservationFailed(const Reservation& reservation, absl::Status why, absl::Time now) {
  Row& r = rows_[reservation.row];
  if (!r.active || r.generation != reservation.generation) return;
  r.reserving = false;
  r.reservation_error = std::move(why);
  r.retry_after = now + kReservationRetry;
}

SessionRows::StepReadiness SessionRows::Readiness(uint32_t row) const {
  const Row& r = rows_[row];
  const uint64_t need = r.tokens + 1;
  if (need > shape_.max_tokens) return StepReadiness::kPastMaxTokens;
  if (capacity(row) >= need) return StepReadiness::kReady;
  return r.reserving ? StepReadiness::kWaitForReservation : StepReadiness::kNoRoom;
}

}  // namespace sparsepool
