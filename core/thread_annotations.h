// Clang thread-safety annotations (-Wthread-safety), as abseil and leveldb use them: shared
// state says which mutex guards it (LB_GUARDED_BY) and functions say which they need
// (LB_REQUIRES) or take (LB_ACQUIRE). gcc ignores them; CI builds with clang and
// -Wthread-safety -Werror (CMakePresets.json "tsa"). Use them with core/mutex.h.
#ifndef LAZYBLOB_CORE_THREAD_ANNOTATIONS_H_
#define LAZYBLOB_CORE_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define LB_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define LB_THREAD_ANNOTATION(x)
#endif

#define LB_CAPABILITY(x) LB_THREAD_ANNOTATION(capability(x))
#define LB_SCOPED_CAPABILITY LB_THREAD_ANNOTATION(scoped_lockable)
#define LB_GUARDED_BY(x) LB_THREAD_ANNOTATION(guarded_by(x))
#define LB_PT_GUARDED_BY(x) LB_THREAD_ANNOTATION(pt_guarded_by(x))
#define LB_REQUIRES(...) LB_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define LB_ACQUIRE(...) LB_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define LB_ACQUIRE_SHARED(...) LB_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define LB_RELEASE(...) LB_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define LB_RELEASE_SHARED(...) LB_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define LB_TRY_ACQUIRE(...) LB_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define LB_EXCLUDES(...) LB_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define LB_ASSERT_HELD(x) LB_THREAD_ANNOTATION(assert_capability(x))
#define LB_NO_THREAD_SAFETY_ANALYSIS LB_THREAD_ANNOTATION(no_thread_safety_analysis)

#endif  // LAZYBLOB_CORE_THREAD_ANNOTATIONS_H_
