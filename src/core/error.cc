#include "core/error.h"

#include <cstring>

namespace kiln {

Error Error::WithContext(std::string_view context) const {
  std::string message;
  message.reserve(context.size() + 2 + message_.size());
  message.append(context).append(": ").append(message_);
  return Error(kind_, std::move(message), retryable_);
}

Error SystemError(std::string_view what, int errno_value) {
  std::string message;
  message.append(what).append(": ").append(std::strerror(errno_value));
  // A full disk or a quota is the environment, never the user's template.
  return EnvError(std::move(message));
}

}  // namespace kiln
