#include "core/tsan.h"

#if defined(__SANITIZE_THREAD__)
// libtbb.so is not instrumented: its internal frees and compares look racy to TSan, and
// so does its copying of parallel_pipeline filter bodies (in the header it inlines).
extern "C" const char* __tsan_default_suppressions() {
  return "called_from_lib:libtbb.so.12\n"
         "race:oneapi/tbb/detail/_pipeline_filters.h\n";
}
#endif
