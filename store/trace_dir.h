// TraceDir: the AccessTraceStore of a store directory: one file per blob in
// `<store>/traces/`, named by the XXH3-128 of the blob id (ids may be longer than a file
// name may be), holding the id (u8 length, bytes) and then the record (AccessTrace
// encoding). store/FORMAT.md "Access traces" describes it. Saves are atomic and durable
// (temporary file, fdatasync, rename, directory sync); a file whose id differs from the
// one asked for (a hash collision) or that does not decode reads as kCorruption.
//
// Thread-safety: thread-safe (each call works on its own files; the last rename wins).
#ifndef LAZYBLOB_STORE_TRACE_DIR_H_
#define LAZYBLOB_STORE_TRACE_DIR_H_

#include <string>
#include <string_view>

#include "core/access_trace.h"
#include "core/status.h"

namespace lazyblob {

class TraceDir final : public AccessTraceStore {
 public:
  // `store_dir` is the store's directory; the traces directory is made on the first Save.
  explicit TraceDir(std::string store_dir);

  Result<AccessTrace> Load(std::string_view blob_id) override;
  Status Save(std::string_view blob_id, const AccessTrace& trace) override;
  // kNotFound when there is none.
  Status Remove(std::string_view blob_id);

  std::string PathOf(std::string_view blob_id) const;

 private:
  const std::string dir_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_TRACE_DIR_H_
