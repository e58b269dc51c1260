// The text form of EngineEvent on the wire (Redis pub/sub messages).
#include "broker/coordinator.hpp"

#include <charconv>

namespace fetchd {

namespace {

std::optional<std::int64_t> parse_i64(std::string_view text) {
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

// The next space-separated word of `text`, consumed.
std::string_view next_word(std::string_view& text) {
  const auto space = text.find(' ');
  std::string_view word = text.substr(0, space);
  text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
  return word;
}

}  // namespace

std::string encode(const EngineEvent& event) {
  std::string text(1, static_cast<char>(event.kind));
  text += ' ' + std::to_string(event.task_id) + ' ';
  text += event.at ? std::to_string(to_unix_ms(*event.at)) : "-";
  text += ' ' + std::to_string(event.failures);
  return text;
}

std::optional<EngineEvent> decode_event(std::string_view text) {
  const std::string_view kind = next_word(text);
  if (kind.size() != 1) return std::nullopt;
  EngineEvent event;
  switch (kind[0]) {
    case 'c':
    case 'd':
    case 'f':
    case 'r':
      event.kind = static_cast<EngineEvent::Kind>(kind[0]);
      break;
    default:
      return std::nullopt;
  }
  auto id = parse_i64(next_word(text));
  const std::string_view at = next_word(text);
  auto failures = parse_i64(next_word(text));
  if (!id || *id <= 0 || !failures || !text.empty()) return std::nullopt;
  event.task_id = *id;
  event.failures = *failures;
  if (at != "-") {
    auto ms = parse_i64(at);
    if (!ms) return std::nullopt;
    event.at = from_unix_ms(*ms);
  }
  if ((event.kind == EngineEvent::Kind::kRunRequested) && !event.at) return std::nullopt;
  return event;
}

}  // namespace fetchd
