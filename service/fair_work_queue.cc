#include "service/fair_work_queue.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace sparsepool {

FairWorkQueue::FairWorkQueue(Options options) : options_(options) {
  for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { Main(); });
}

FairWorkQueue::~FairWorkQueue() {
  Stop();
  for (std::thread& thread : threads_) thread.join();
}

absl::Status FairWorkQueue::Submit(absl::string_view tenant, Class work_class, Work work, Admission admission) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      Lanes& lanes = work_class == Class::kUrgent ? urgent_ : bulk_;
      std::deque<Work>& queue = lanes.queues[std::string(tenant)];
      if (admission == Admission::kBounded &&
          (queue.size() >= options_.max_queued_per_tenant || lanes.queued >= options_.max_queued)) {
        ++counters_.refused;
        const bool own = queue.size() >= options_.max_queued_per_tenant;
        if (queue.empty()) lanes.queues.erase(std::string(tenant));
        return absl::ResourceExhaustedError(absl::StrCat(
            "the daemon is saturated: ",
            own ? absl::StrCat(options_.max_queued_per_tenant,
                               work_class == Class::kUrgent ? " growth" : " create", " calls of ",
                               tenant.empty() ? std::string("this caller") : absl::StrCat("\"", tenant, "\""),
                               " are queued already (--slow_work_queue)")
                : absl::StrCat(options_.max_queued, work_class == Class::kUrgent ? " growth" : " create",
                               " calls are queued already"),
            "; this one is refused rather than queued behind them: retry later, or with fewer calls at once"));
      }
      if (queue.empty()) lanes.turns.emplace_back(tenant);
      queue.push_back(std::move(work));
      ++lanes.queued;
      return absl::OkStatus();
    }
  }
  work(/*stopping=*/true);
  return absl::OkStatus();
}

FairWorkQueue::Work FairWorkQueue::Lanes::TakeNext() {
  // The tenant whose turn it is gives one call, and goes to the back of the line if it
  // has more.
  std::string tenant = std::move(turns.front());
  turns.pop_front();
  auto queue = queues.find(tenant);
  Work work = std::move(queue->second.front());
  queue->second.pop_front();
  --queued;
  if (queue->second.empty()) {
    queues.erase(queue);
  } else {
    turns.push_back(std::move(tenant));
  }
  return work;
}

bool FairWorkQueue::MayTakeBulk() const {
  // Once stopping, queued work is only answered (fast): any thread takes it.
  const size_t threads = static_cast<size_t>(options_.threads);
  return stopping_ || threads < 2 || bulk_running_ + 1 < threads;
}

void FairWorkQueue::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  const auto all_exited = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return exited_ == threads_.size(); };
  mu_.Await(absl::Condition(&all_exited));
}

FairWorkQueue::Counters FairWorkQueue::counters() const {
  absl::MutexLock lock(&mu_);
  Counters counters = counters_;
  counters.queued = urgent_.queued + bulk_.queued;  // the lanes count what waits
  return counters;
}

void FairWorkQueue::Main() {
  absl::MutexLock lock(&mu_);
  while (true) {
    const auto work_or_stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || !urgent_.turns.empty() || (!bulk_.turns.empty() && MayTakeBulk());
    };
    mu_.Await(absl::Condition(&work_or_stop));
    if (urgent_.turns.empty() && bulk_.turns.empty()) {  // and stopping
      ++exited_;
      return;
    }
    const bool urgent = !urgent_.turns.empty();
    Work work = urgent ? urgent_.TakeNext() : bulk_.TakeNext();
    ++counters_.running;
    if (!urgent) ++bulk_running_;
    const bool stopping = stopping_;
    mu_.Unlock();
    work(stopping);
    work = nullptr;  // what it captured goes before the count says it ended
    mu_.Lock();
    --counters_.running;
    if (!urgent) --bulk_running_;
    ++counters_.done;
  }
}

}  // namespace sparsepool
