#include "core/task_pool.h"

#include <exception>
#include <string>
#include <utility>

#include "core/log.h"
#include "core/tsan.h"

namespace lazyblob {

TaskPool::TaskPool(int threads)
    : threads_(threads),
      // Workers of both arenas plus one spare; max_allowed_parallelism counts a master.
      parallelism_(tbb::global_control::max_allowed_parallelism,
                   static_cast<std::size_t>(threads) + 2),
      demand_arena_(threads, 0),
      background_arena_(1, 0, tbb::task_arena::priority::low) {
  demand_arena_.initialize();
  background_arena_.initialize();
}

TaskPool::~TaskPool() { WaitIdle(); }

void TaskPool::Submit(TaskPriority priority, std::function<void()> task) {
  const bool demand = priority == TaskPriority::kDemand;
  Queue* queue;
  {
    MutexLock lock(&mu_);
    queue = demand ? &demand_ : &background_;
    queue->push_back(std::move(task));
    ++tasks_;
  }
  // libtbb is not built with TSan, which cannot see its hand-off: tell TSan about it
  // (release here, acquire in RunNext) and hide the construction of oneTBB's task, which
  // holds two pointers (TSan builds only).
  TsanRelease(this);
  TsanIgnoreWritesBegin();
  (demand ? demand_arena_ : background_arena_).enqueue([this, queue] { RunNext(queue); });
  TsanIgnoreWritesEnd();
}

void TaskPool::RunNext(Queue* queue) {
  TsanAcquire(this);
  std::function<void()> task;
  {
    MutexLock lock(&mu_);
    task = std::move(queue->front());
    queue->pop_front();
  }
  try {
    task();
  } catch (const std::exception& e) {
    Log(LogLevel::kError, std::string("task failed with an exception: ") + e.what());
  } catch (...) {
    Log(LogLevel::kError, "task failed with an exception");
  }
  task = nullptr;  // release captured objects before reporting idle
  MutexLock lock(&mu_);
  if (--tasks_ == 0) idle_cv_.SignalAll();
}

void TaskPool::WaitIdle() {
  MutexLock lock(&mu_);
  while (tasks_ != 0) idle_cv_.Wait(&mu_);
}

}  // namespace lazyblob
