#ifndef FLEETPLAN_PLANNER_COMMON_MUTEX_H_
#define FLEETPLAN_PLANNER_COMMON_MUTEX_H_

// The mutex for fleetplan's own state: an absl::Mutex that ThreadSanitizer can see.
//
// Why not absl::Mutex directly: Debian's Abseil is not built with TSan, so TSan cannot see
// absl::Mutex synchronize and would call every guarded access a race. In TSan builds this class
// tells TSan about each lock and unlock through its public mutex interface
// (sanitizer/tsan_interface.h); in other builds it is exactly absl::Mutex. Waiting is a CondVar and
// a predicate the waiter checks under the lock (WaitUntil), not absl's Await, whose conditions
// Abseil may evaluate on another thread, out of TSan's sight. Thread-safe; not copyable.

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#if defined(__SANITIZE_THREAD__)
#define FLEETPLAN_TSAN_ANNOTATE 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FLEETPLAN_TSAN_ANNOTATE 1
#endif
#endif
#ifdef FLEETPLAN_TSAN_ANNOTATE
#include <sanitizer/tsan_interface.h>
#endif

namespace fleetplan {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() {
#ifdef FLEETPLAN_TSAN_ANNOTATE
    __tsan_mutex_create(this, 0);
#endif
  }
  ~Mutex() {
#ifdef FLEETPLAN_TSAN_ANNOTATE
    __tsan_mutex_destroy(this, 0);
#endif
  }
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    BeforeLock();
    mu_.Lock();
    AfterLock();
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    BeforeUnlock();
    mu_.Unlock();
    AfterUnlock();
  }

  // Waits on `cv` (signalled by a thread that changed what `done` reads, under this mutex) until
  // `done()` holds or `deadline` passes. Returns done(). The lock is held on return.
  template <typename Done>
  bool WaitUntil(absl::CondVar& cv, Done done, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    while (!done()) {
      if (absl::Now() >= deadline) return false;
      BeforeUnlock();
      AfterUnlock();
      cv.WaitWithDeadline(&mu_, deadline);
      BeforeLock();
      AfterLock();
    }
    return true;
  }

 private:
  void BeforeLock() {
#ifdef FLEETPLAN_TSAN_ANNOTATE
    __tsan_mutex_pre_lock(this, 0);
#endif
  }
  void AfterLock() {
#ifdef FLEETPLAN_TSAN_ANNOTATE
    __tsan_mutex_post_lock(this, 0, 0);
#endif
  }
  void BeforeUnlock() {
#ifdef FLEETPLAN_TSAN_ANNOTATE
    __tsan_mutex_pre_unlock(this, 0);
#endif
  }
  void AfterUnlock() {
#ifdef FLEETPLAN_TSAN_ANNOTATE
    __tsan_mutex_post_unlock(this, 0);
#endif
  }

  absl::Mutex mu_;
};

// Holds a Mutex for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace fleetplan

#endif  // FLEETPLAN_PLANNER_COMMON_MUTEX_H_
