#include "tools/lazyblobd_rlimit.h"

#include <sys/resource.h>

namespace lazyblob {

Result<FdLimit> RaiseFdLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return Status::FromErrno(errno, "getrlimit(NOFILE)");
  FdLimit out;
  out.soft_before = lim.rlim_cur;
  out.hard = lim.rlim_max;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
      return Status::FromErrno(errno, "setrlimit(NOFILE)");
    }
  }
  out.soft = lim.rlim_cur;
  return out;
}

}  // namespace lazyblob
