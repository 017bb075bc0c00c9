// Exit codes of the lazyblob CLI and the one place a Status becomes one.
//
//   0  success
//   1  a data problem was found (verify found corrupt chunks; a read hit corruption)
//   2  bad usage or input: missing/unreadable/empty file, unknown blob, an id already
//      used for other content, no store, store locked by another writer, disk full
//   3  an unexpected failure (I/O error, internal bug): not the caller's fault
//
// Thread-safety: pure functions.
#ifndef LAZYBLOB_TOOLS_LAZYBLOB_EXIT_H_
#define LAZYBLOB_TOOLS_LAZYBLOB_EXIT_H_

#include <string_view>

#include "core/status.h"

namespace lazyblob::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitDataProblem = 1,
  kExitBadInput = 2,
  kExitFailure = 3,
};

// The mapping from StatusCode to exit code. Every verb ends through it.
ExitCode ExitCodeFor(const Status& status);

// A short lower-case description of the status's class ("no space left on device",
// "store is locked by another writer"), used when the store's message lacks one.
std::string_view Describe(StatusCode code);

// Prints the status as ONE line "lazyblob: VERB: MESSAGE" on stderr and returns its exit
// code. Newlines inside the message are flattened so scripts can rely on one line.
ExitCode ReportError(std::string_view verb, const Status& status);

}  // namespace lazyblob::cli

#endif  // LAZYBLOB_TOOLS_LAZYBLOB_EXIT_H_
