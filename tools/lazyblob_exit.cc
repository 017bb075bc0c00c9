#include "tools/lazyblob_exit.h"

#include <cstdio>
#include <string>

namespace lazyblob::cli {

ExitCode ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kCorruption:
    case StatusCode::kMalformed:
      return kExitDataProblem;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kAlreadyExists:
    case StatusCode::kNoSpace:
    case StatusCode::kBusy:
    case StatusCode::kPermissionDenied:
    case StatusCode::kUnsupported:
    case StatusCode::kCancelled:
      return kExitBadInput;
    case StatusCode::kIoError:
    case StatusCode::kInternal:
      return kExitFailure;
  }
  return kExitFailure;
}

std::string_view Describe(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kInvalidArgument:
      return "invalid argument";
    case StatusCode::kNotFound:
      return "not found";
    case StatusCode::kAlreadyExists:
      return "already exists";
    case StatusCode::kCorruption:
      return "corrupt data";
    case StatusCode::kIoError:
      return "I/O error";
    case StatusCode::kNoSpace:
      return "no space left on device";
    case StatusCode::kBusy:
      return "busy (locked by another process)";
    case StatusCode::kUnsupported:
      return "not supported";
    case StatusCode::kPermissionDenied:
      return "permission denied";
    case StatusCode::kMalformed:
      return "malformed data";
    case StatusCode::kCancelled:
      return "cancelled";
    case StatusCode::kInternal:
      return "internal error";
  }
  return "error";
}

ExitCode ReportError(std::string_view verb, const Status& status) {
  std::string msg = status.message();
  for (char& c : msg) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (msg.empty()) msg = std::string(Describe(status.code()));
  std::fprintf(stderr, "lazyblob: %.*s: %s\n", static_cast<int>(verb.size()), verb.data(),
               msg.c_str());
  return ExitCodeFor(status);
}

}  // namespace lazyblob::cli
