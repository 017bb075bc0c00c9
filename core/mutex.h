// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable with clang
// thread-safety annotations (core/thread_annotations.h), so the compiler checks that state
// marked LB_GUARDED_BY(mu_) is only touched with mu_ held. libstdc++'s own types carry no
// annotations, so shared state in lazyblob uses these.
//
// Waiting: write the loop where the lock is visibly held, so the analysis can check the
// condition's reads:  MutexLock l(&mu_); while (!ready_) cv_.Wait(&mu_);
//
// Thread-safety: Mutex and CondVar are thread-safe; a MutexLock belongs to one thread.
#ifndef LAZYBLOB_CORE_MUTEX_H_
#define LAZYBLOB_CORE_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#include "core/thread_annotations.h"

namespace lazyblob {

class LB_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() LB_ACQUIRE() { mu_.lock(); }
  void Unlock() LB_RELEASE() { mu_.unlock(); }
  // Tells the analysis the caller holds the mutex (where it cannot see it, e.g. a callback).
  void AssertHeld() const LB_ASSERT_HELD(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// A reader-writer mutex: many holders of the shared side, or one of the exclusive side.
class LB_CAPABILITY("mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() LB_ACQUIRE() { mu_.lock(); }
  void Unlock() LB_RELEASE() { mu_.unlock(); }
  void LockShared() LB_ACQUIRE_SHARED() { mu_.lock_shared(); }
  void UnlockShared() LB_RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

class LB_SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex* mu) LB_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~WriterLock() LB_RELEASE() { mu_->Unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex* const mu_;
};

class LB_SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex* mu) LB_ACQUIRE_SHARED(mu) : mu_(mu) { mu_->LockShared(); }
  ~ReaderLock() LB_RELEASE() { mu_->UnlockShared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex* const mu_;
};

class LB_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) LB_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() LB_RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

class CondVar {
 public:
  // Atomically releases `mu`, waits for a signal (or a spurious wake-up), retakes `mu`.
  void Wait(Mutex* mu) LB_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // As Wait, for at most `timeout`. false: timed out.
  template <typename Rep, typename Period>
  bool WaitFor(Mutex* mu, std::chrono::duration<Rep, Period> timeout) LB_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool woken = cv_.wait_for(lock, timeout) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }
  // As Wait, until `deadline`. false: timed out.
  template <typename Clock, typename Duration>
  bool WaitUntil(Mutex* mu, std::chrono::time_point<Clock, Duration> deadline) LB_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool woken = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_CORE_MUTEX_H_
