// The version both binaries print for --version and put in JSON outputs: the CMake
// project version and `git describe` of the tree it was built from, e.g.
// "0.1.0 (git cb16845-dirty)". Generated at build time (cmake/version.cmake), so a rebuild
// after a commit reports the new revision without reconfiguring.
//
// Thread-safety: pure functions.
#ifndef LAZYBLOB_TOOLS_TOOL_VERSION_H_
#define LAZYBLOB_TOOLS_TOOL_VERSION_H_

#include <string>

namespace lazyblob {

// "0.1.0 (git cb16845)".
std::string ToolVersion();

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_TOOL_VERSION_H_
