// WalkErofs: the inode walk behind ErofsLayoutParser, which is the interface to use; this
// header is private to store/. It fills `out` from an untrusted image read through `read`
// (every read bounds-checked against `image_size` first) and fails with kCorruption or
// kUnsupported, leaving `out` partly filled.
//
// Thread-safety: a pure function of its arguments; `read` is called from the caller's thread.
#ifndef LAZYBLOB_STORE_EROFS_WALKER_H_
#define LAZYBLOB_STORE_EROFS_WALKER_H_

#include <cstdint>

#include "core/status.h"
#include "store/erofs_layout.h"

namespace lazyblob {

Status WalkErofs(const ErofsReadFn& read, std::uint64_t image_size,
                 const ErofsLayoutOptions& options, ErofsLayout& out);

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_EROFS_WALKER_H_
