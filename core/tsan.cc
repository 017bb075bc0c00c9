#include "core/tsan.h"

#if defined(__SANITIZE_THREAD__)
// libtbb.so is not instrumented: its internal frees and compares look racy to TSan, and
// so does its copying of parallel_pipeline filter bodies (in the header it inlines).
// Debian's librocksdb is not instrumented either (its own mutexes then look racy); RocksDB
// objects are used only through its thread-safe API.
extern "C" const char* __tsan_default_suppressions() {
  return "called_from_lib:libtbb.so.12\n"
         "race:oneapi/tbb/detail/_pipeline_filters.h\n"
         "race:rocksdb::\n";
}
#endif
