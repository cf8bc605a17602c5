// The client's copy of the layouts it has used. Layouts are immutable once published
// (shared_ptr to const): a fetch keeps using the one it looked up even if another
// thread replaces it after the sequence grew.
#ifndef SPARSEPOOL_CLIENT_LAYOUT_CACHE_H_
#define SPARSEPOOL_CLIENT_LAYOUT_CACHE_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/layout.h"

namespace sparsepool {

class LayoutCache {
 public:
  using Entry = std::shared_ptr<const SequenceLayout>;

  // nullptr when the sequence is not cached.
  Entry Find(SequenceId id) const {
    absl::MutexLock lock(&mu_);
    auto it = layouts_.find(id);
    return it == layouts_.end() ? nullptr : it->second;
  }
  // Keeps the layout with more tokens when two threads refresh at once.
  Entry Put(SequenceLayout layout) {
    auto entry = std::make_shared<const SequenceLayout>(std::move(layout));
    absl::MutexLock lock(&mu_);
    Entry& slot = layouts_[entry->sequence_id];
    if (slot == nullptr || slot->tokens <= entry->tokens) slot = entry;
    return slot;
  }
  // Put, only while the sequence is still cached and only when `layout` has more
  // tokens: a growth that lands after its sequence was released or forgotten must not
  // bring its layout back, nor replace one fetched since (after a daemon restart, that
  // one names the new daemon's RDMA worker and keys; an answer from before may not).
  void PutIfCached(SequenceLayout layout) {
    auto entry = std::make_shared<const SequenceLayout>(std::move(layout));
    absl::MutexLock lock(&mu_);
    auto it = layouts_.find(entry->sequence_id);
    if (it != layouts_.end() && it->second->tokens < entry->tokens) it->second = std::move(entry);
  }
  void Erase(SequenceId id) {
    absl::MutexLock lock(&mu_);
    layouts_.erase(id);
  }

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<SequenceId, Entry> layouts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_CLIENT_LAYOUT_CACHE_H_
