// ThreadSanitizer annotations. Debian's libtbb is not built with TSan, so orderings that
// oneTBB provides inside the library are invisible to it; code that hands work through
// oneTBB states that order with TsanRelease/TsanAcquire. No-ops in other builds.
// core/tsan.cc holds the suppressions every TSan binary gets (core/CMakeLists.txt compiles
// it into each target that links lazyblob_core).
#ifndef LAZYBLOB_CORE_TSAN_H_
#define LAZYBLOB_CORE_TSAN_H_

#if defined(__SANITIZE_THREAD__)
extern "C" {
void AnnotateIgnoreWritesBegin(const char* file, int line);
void AnnotateIgnoreWritesEnd(const char* file, int line);
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}
#define TsanIgnoreWritesBegin() AnnotateIgnoreWritesBegin(__FILE__, __LINE__)
#define TsanIgnoreWritesEnd() AnnotateIgnoreWritesEnd(__FILE__, __LINE__)
#define TsanRelease(p) __tsan_release(p)
#define TsanAcquire(p) __tsan_acquire(p)
#else
#define TsanRelease(p) (void)0
#define TsanAcquire(p) (void)0
#define TsanIgnoreWritesBegin() (void)0
#define TsanIgnoreWritesEnd() (void)0
#endif

#endif  // LAZYBLOB_CORE_TSAN_H_
