#include "tools/tool_version.h"

#include "lazyblob_version.h"  // generated: LAZYBLOB_VERSION, LAZYBLOB_REVISION

namespace lazyblob {

std::string ToolVersion() {
  return std::string(LAZYBLOB_VERSION) + " (git " + LAZYBLOB_REVISION + ")";
}

}  // namespace lazyblob
