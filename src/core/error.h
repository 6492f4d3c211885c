// Errors carried up through the engine. The kind decides the exit code the
// front end reports (DESIGN.md): the user's input, the environment, or kiln.
#pragma once

#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace kiln {

enum class ErrorKind {
  kUser,         // the template, a reference, an input file, a key: exit 1
  kEnvironment,  // the disk, the network, a missing tool: exit 2
  kInternal,     // a bug in kiln: exit 3
};

class Error : public std::exception {
 public:
  Error(ErrorKind kind, std::string message, bool retryable = false)
      : kind_(kind), message_(std::move(message)), retryable_(retryable) {}

  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  // Whether trying the same operation again may succeed (network faults).
  bool retryable() const { return retryable_; }
  const char* what() const noexcept override { return message_.c_str(); }

  // The same error, with what the caller was doing in front: "context:
  // message".
  Error WithContext(std::string_view context) const;

 private:
  ErrorKind kind_;
  std::string message_;
  bool retryable_;
};

inline Error UserError(std::string message) {
  return Error(ErrorKind::kUser, std::move(message));
}
inline Error EnvError(std::string message, bool retryable = false) {
  return Error(ErrorKind::kEnvironment, std::move(message), retryable);
}
inline Error InternalError(std::string message) {
  return Error(ErrorKind::kInternal, std::move(message));
}
// An environment error from errno: "what: No space left on device".
Error SystemError(std::string_view what, int errno_value);

// Runs fn; any kiln::Error escaping it gets `context` in front.
template <typename Fn>
auto WithContext(std::string_view context, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    throw e.WithContext(context);
  }
}

}  // namespace kiln
