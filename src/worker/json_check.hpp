// Validating a fetched body as JSON (RFC 8259) in one SAX pass, without building a document:
// a worker checks every response, so this must be fast and use little memory. It also counts
// the records of the feeds fetchd polls (a top-level array of objects).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fetchd {

struct JsonCheck {
  bool ok = false;
  // The number of elements when the top level is an array whose elements are all objects
  // (0 for []); nullopt for any other valid document, and when not ok.
  std::optional<std::int64_t> records;
  // Why the body is not JSON, for a person: "invalid JSON at byte 17: syntax error while
  // parsing value - unexpected '}'; expected '[', '{', or a literal", where the byte is the
  // 1-based position at which the parser gave up (the column, for a one-line body). Always
  // valid UTF-8 and short, whatever the body held. Empty when ok.
  std::string error;
};

inline constexpr std::size_t kMaxJsonDepth = 512;

// Never throws. Deeper nesting than kMaxJsonDepth, an empty body, invalid UTF-8, trailing
// content and numbers out of range are errors.
JsonCheck check_json(std::string_view body);

// The same through nlohmann's parser alone: check_json's reference, for tests.
JsonCheck check_json_reference(std::string_view body);

}  // namespace fetchd
