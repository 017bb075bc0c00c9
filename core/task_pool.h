// TaskPool: the threads that serve requests, with two priorities. Demand tasks (a kernel
// request, and the helpers that fill its chunks) run on `threads` oneTBB workers; background
// tasks (prefetch of whole blobs) run one at a time on a low-priority arena, so they never
// take a demand thread.
//
// Blocking I/O in oneTBB: tasks block in pread (store), pwrite (cache files) and in waits for
// another task's load of the same chunk. The pool therefore runs its tasks in its own arenas
// (no slots reserved for external threads) and raises tbb::global_control's
// max_allowed_parallelism so that that many threads really exist: oneTBB's default
// (hardware threads - 1 workers, i.e. 1 on a 2-core machine) would serialise all I/O.
// docs/engine-measurements.md has the figures behind the default thread count.
//
// Tasks travel through the pool's own queues; oneTBB only carries a wake-up. A task that
// throws is logged and dropped: whoever owns a kernel request answers it while unwinding
// (core/pending_request.h).
//
// Thread-safety: Submit and WaitIdle from any thread, tasks included; the destructor from
// one thread once no one submits any more (it waits for every task to finish).
#ifndef LAZYBLOB_CORE_TASK_POOL_H_
#define LAZYBLOB_CORE_TASK_POOL_H_

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <cstddef>
#include <deque>
#include <functional>

#include "core/mutex.h"

namespace lazyblob {

enum class TaskPriority {
  kDemand,      // a request someone waits for
  kBackground,  // work ahead of demand (prefetch): one at a time, below every demand task
};

class TaskPool {
 public:
  // `threads` >= 1: demand tasks that may run (and block) at once.
  explicit TaskPool(int threads);
  // Waits until every submitted task finished.
  ~TaskPool();
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  void Submit(TaskPriority priority, std::function<void()> task) LB_EXCLUDES(mu_);

  // Returns once no task is queued or running (tasks submitted meanwhile included).
  void WaitIdle() LB_EXCLUDES(mu_);

  int threads() const { return threads_; }

 private:
  using Queue = std::deque<std::function<void()>>;
  void RunNext(Queue* queue) LB_EXCLUDES(mu_);

  const int threads_;
  tbb::global_control parallelism_;
  tbb::task_arena demand_arena_;
  tbb::task_arena background_arena_;

  Mutex mu_;
  CondVar idle_cv_;
  int tasks_ LB_GUARDED_BY(mu_) = 0;  // submitted and not finished
  Queue demand_ LB_GUARDED_BY(mu_);
  Queue background_ LB_GUARDED_BY(mu_);
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_TASK_POOL_H_
