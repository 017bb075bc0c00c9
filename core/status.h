// Status and Result<T>: how errors cross module and thread boundaries in lazyblob.
//
// No exception crosses a module or a thread; fallible functions return a [[nodiscard]]
// Status or Result<T>. errno values become a Status only through Status::FromErrno, so
// the errno a failure came from is never lost (Status::errno_value()).
//
// Thread-safety: value types; a const Status may be read from many threads.
#ifndef LAZYBLOB_CORE_STATUS_H_
#define LAZYBLOB_CORE_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace lazyblob {

// Error classes. Callers branch on these, so keep them coarse and stable.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,   // the caller's input is wrong (bad usage, bad id, bad file)
  kNotFound = 2,          // the named blob/chunk/file does not exist
  kAlreadyExists = 3,     // an id is already used for other content
  kCorruption = 4,        // stored bytes fail verification; never served
  kIoError = 5,           // an OS call failed (errno_value() says which)
  kNoSpace = 6,           // ENOSPC / EDQUOT: the disk is full
  kBusy = 7,              // a lock or device is held by someone else
  kUnsupported = 8,       // the kernel or filesystem lacks a needed feature
  kPermissionDenied = 9,  // EPERM / EACCES
  kMalformed = 10,        // a message from the kernel (or a file header) does not decode
  kCancelled = 11,        // shutting down
  kInternal = 12,         // a bug: an invariant did not hold
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message, int errno_value = 0)
      : code_(code), errno_(errno_value), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  // The single place errno becomes a Status: maps ENOENT, ENOSPC, EBUSY, ... to a code and
  // keeps the errno. `context` says what was being done ("open /x/pack-1").
  static Status FromErrno(int err, std::string_view context);

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  int errno_value() const { return errno_; }
  const std::string& message() const { return message_; }
  // "NotFound: blob 'x' is not in the store".
  std::string ToString() const;

  // Prefixes the message with more context ("import foo.img: " + message).
  Status WithContext(std::string_view context) const;

  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  int errno_ = 0;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status Busy(std::string m) { return {StatusCode::kBusy, std::move(m)}; }
inline Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status Malformed(std::string m) { return {StatusCode::kMalformed, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }

// Either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // OK when holding a value.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace lazyblob

#define LB_CONCAT_INNER_(a, b) a##b
#define LB_CONCAT_(a, b) LB_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function when `expr` is not OK.
#define LB_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::lazyblob::Status lb_status_ = (expr);  \
    if (!lb_status_.ok()) return lb_status_; \
  } while (0)

// `LB_ASSIGN_OR_RETURN(auto x, MakeX());` binds x or returns the error.
#define LB_ASSIGN_OR_RETURN(lhs, expr) \
  LB_ASSIGN_OR_RETURN_IMPL_(LB_CONCAT_(lb_r_, __LINE__), lhs, expr)
#define LB_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

#endif  // LAZYBLOB_CORE_STATUS_H_
