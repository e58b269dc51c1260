// Expected failures as values: an error code that knows nothing of HTTP (api/ maps it to a
// status in one function), a public message for the client, field errors, and an internal
// message for the log only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

namespace fetchd {

enum class ErrorCode {
  kMalformed,        // input that cannot be parsed (bad JSON)
  kInvalid,          // well-formed input with invalid values (field errors say which)
  kUnauthenticated,  // no, unknown or expired credentials
  kForbidden,        // authenticated but not allowed
  kNotFound,         // absent, or not visible to the caller
  kConflict,         // unique key taken, concurrent change
  kTooLarge,         // over a size limit
  kThrottled,        // over a rate limit
  kUnavailable,      // a dependency (database, broker) is down; worth retrying
  kInternal,         // a bug or broken invariant
};

std::string_view to_string(ErrorCode code);

struct FieldError {
  std::string field;    // JSON name of the field, e.g. "end_time"
  std::string message;  // what is wrong with it, for a person

  friend bool operator==(const FieldError&, const FieldError&) = default;
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;                        // public: safe to show the client
  std::vector<FieldError> fields;             // with kInvalid
  std::string internal;                       // for the log only (SQL error text, errno...)
  std::optional<std::int64_t> retry_after_s;  // with kThrottled: when to try again (seconds)

  static Error make(ErrorCode code, std::string message, std::string internal = {}) {
    return Error{code, std::move(message), {}, std::move(internal), std::nullopt};
  }
};

template <typename T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(ErrorCode code, std::string message, std::string internal = {}) {
  return tl::unexpected(Error::make(code, std::move(message), std::move(internal)));
}

}  // namespace fetchd
