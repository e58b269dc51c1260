#include "core/time.hpp"

namespace fetchd {

std::optional<TimePoint> parse_rfc3339(std::string_view) {
  return std::nullopt;
}  // TODO(core)
std::string format_rfc3339(TimePoint) {
  return {};
}  // TODO(core)

}  // namespace fetchd
