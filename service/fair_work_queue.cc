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

absl::Status FairWorkQueue::Submit(absl::string_view tenant, Work work) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      std::deque<Work>& queue = queues_[std::string(tenant)];
      if (queue.size() >= options_.max_queued_per_tenant || counters_.queued >= options_.max_queued) {
        ++counters_.refused;
        const bool own = queue.size() >= options_.max_queued_per_tenant;
        if (queue.empty()) queues_.erase(std::string(tenant));
        return absl::ResourceExhaustedError(absl::StrCat(
            "the daemon is saturated: ",
            own ? absl::StrCat(options_.max_queued_per_tenant, " create/grow calls of ",
                               tenant.empty() ? std::string("this caller") : absl::StrCat("\"", tenant, "\""),
                               " are queued already (--slow_work_queue)")
                : absl::StrCat(options_.max_queued, " create/grow calls are queued already"),
            "; this one is refused rather than queued behind them: retry later, or with fewer calls at once"));
      }
      if (queue.empty()) turns_.emplace_back(tenant);
      queue.push_back(std::move(work));
      ++counters_.queued;
      return absl::OkStatus();
    }
  }
  work(/*stopping=*/true);
  return absl::OkStatus();
}

void FairWorkQueue::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  const auto all_exited = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return exited_ == threads_.size(); };
  mu_.Await(absl::Condition(&all_exited));
}

FairWorkQueue::Counters FairWorkQueue::counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

void FairWorkQueue::Main() {
  absl::MutexLock lock(&mu_);
  while (true) {
    const auto work_or_stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !turns_.empty(); };
    mu_.Await(absl::Condition(&work_or_stop));
    if (turns_.empty()) {  // and stopping
      ++exited_;
      return;
    }
    // The tenant whose turn it is gives one call, and goes to the back of the line if
    // it has more.
    std::string tenant = std::move(turns_.front());
    turns_.pop_front();
    auto queue = queues_.find(tenant);
    Work work = std::move(queue->second.front());
    queue->second.pop_front();
    if (queue->second.empty()) {
      queues_.erase(queue);
    } else {
      turns_.push_back(std::move(tenant));
    }
    --counters_.queued;
    ++counters_.running;
    const bool stopping = stopping_;
    mu_.Unlock();
    work(stopping);
    work = nullptr;  // what it captured goes before the count says it ended
    mu_.Lock();
    --counters_.running;
    ++counters_.done;
  }
}

}  // namespace sparsepool
