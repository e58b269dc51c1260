// Task input: reading a TaskSpec from an API body (create or partial update) and the value
// rules of DESIGN.md §3. Every problem is collected, one FieldError per field, so that a client
// fixes its request in one round trip.
#include "core/task.hpp"

#include <array>
#include <cmath>
#include <limits>
#include <string_view>
#include <utility>

namespace fetchd {

namespace {

using nlohmann::json;

// The order in which field errors are reported: the order of the fields in the API.
constexpr std::array<std::string_view, 8> kFieldOrder{
    "name",     "url",           "parameters",         "start_time",
    "end_time", "task_interval", "max_execution_time", "max_attempt",
};

constexpr std::array<std::string_view, 7> kMethods{"GET",    "POST", "PUT",    "PATCH",
                                                   "DELETE", "HEAD", "OPTIONS"};

constexpr std::string_view kTimeMessage =
    "must be an RFC 3339 date-time with an offset or Z, e.g. 2023-01-04T21:41:38.930Z";
constexpr std::string_view kParametersMessage =
    "must be a JSON object, or a string holding a JSON object";

std::string range_message(std::int64_t low, std::int64_t high) {
  return "must be an integer from " + std::to_string(low) + " to " + std::to_string(high);
}

// Collects field errors, at most one per field: the first problem found is the one reported,
// since a second message about the same field (e.g. "too long" after "not a string") would
// only be noise.
class FieldErrors {
 public:
  void add(std::string_view field, std::string message) {
    if (!has(field)) errors_.push_back(FieldError{std::string(field), std::move(message)});
  }
  bool has(std::string_view field) const {
    for (const auto& e : errors_)
      if (e.field == field) return true;
    return false;
  }
  bool empty() const { return errors_.empty(); }

  std::vector<FieldError> sorted() && {
    std::vector<FieldError> out;
    out.reserve(errors_.size());
    for (auto field : kFieldOrder)
      for (auto& e : errors_)
        if (e.field == field) out.push_back(std::move(e));
    return out;
  }

 private:
  std::vector<FieldError> errors_;
};

// JSON has one number type: 3 and 3.0 are the same value (JSON Schema's "integer" accepts
// both), but 2.5 and true are not integers.
std::optional<std::int64_t> integer_value(const json& value) {
  if (value.is_number_unsigned()) {
    const auto u = value.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (value.is_number_integer()) return value.get<std::int64_t>();
  if (value.is_number_float()) {
    const double d = value.get<double>();
    constexpr double kExact = 9007199254740992.0;  // 2^53: beyond it doubles skip integers
    if (!std::isfinite(d) || d != std::trunc(d) || std::fabs(d) > kExact) return std::nullopt;
    return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

// Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF). Returns the code
// points, or nullopt when the bytes are not UTF-8.
std::optional<std::vector<char32_t>> decode_utf8(std::string_view text) {
  std::vector<char32_t> out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if (lead < 0x80) {
      length = 1, cp = lead;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2, cp = lead & 0x1F, min = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, cp = lead & 0x0F, min = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, cp = lead & 0x07, min = 0x10000;
    } else {
      return std::nullopt;
    }
    if (text.size() - i < length) return std::nullopt;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (next & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    out.push_back(cp);
    i += length;
  }
  return out;
}

// Unicode White_Space.
bool is_white_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

std::optional<std::string> check_name(const std::string& name) {
  const auto code_points = decode_utf8(name);
  if (!code_points) return "must be valid UTF-8";
  const auto message =
      "must be from 1 to " + std::to_string(TaskLimits::kNameMaxChars) + " characters";
  if (code_points->empty() || code_points->size() > TaskLimits::kNameMaxChars) return message;
  bool blank = true;
  for (auto cp : *code_points) blank = blank && is_white_space(cp);
  if (blank) return "must not be blank";
  return std::nullopt;
}

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

bool is_port(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  int value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  return value >= 1 && value <= 65535;
}

// The URL's host part: a bracketed IP literal or a registered name/IPv4 address.
bool is_host(std::string_view host) {
  if (host.empty()) return false;
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    for (char c : host.substr(1, host.size() - 2)) {
      const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      c == ':' || c == '.' || c == '%';
      if (!ok) return false;
    }
    return true;
  }
  for (char c : host) {
    // Characters that delimit or cannot appear in a host; `{}` are allowed because parameters
    // fill {placeholders} anywhere in the URL.
    if (c == '[' || c == ']' || c == '<' || c == '>' || c == '"' || c == '\\' || c == '^' ||
        c == '`' || c == '|')
      return false;
  }
  return true;
}

std::optional<std::string> check_url(std::string_view url) {
  if (url.size() > TaskLimits::kUrlMaxBytes)
    return "must be at most " + std::to_string(TaskLimits::kUrlMaxBytes) + " bytes";
  const std::string shape = "must be an absolute http or https URL with a host";
  for (char c : url) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7F)
      return shape + ", without spaces or control characters (percent-encode them)";
    if (byte >= 0x80) return shape + ", in ASCII (percent-encode other characters)";
  }
  const auto colon = url.find(':');
  if (colon == std::string_view::npos) return shape;
  const auto scheme = url.substr(0, colon);
  if (!equals_ignoring_case(scheme, "http") && !equals_ignoring_case(scheme, "https")) return shape;
  auto rest = url.substr(colon + 1);
  if (rest.substr(0, 2) != "//") return shape;
  rest.remove_prefix(2);
  auto authority = rest.substr(0, rest.find_first_of("/?#"));
  if (const auto at = authority.rfind('@'); at != std::string_view::npos)
    authority.remove_prefix(at + 1);  // user info is the fetcher's business, not ours
  std::string_view host = authority;
  const auto port_colon = authority.rfind(':');
  const auto bracket = authority.rfind(']');
  if (port_colon != std::string_view::npos &&
      (bracket == std::string_view::npos || port_colon > bracket)) {
    host = authority.substr(0, port_colon);
    if (!is_port(authority.substr(port_colon + 1))) return "must have a port from 1 to 65535";
  }
  if (!is_host(host)) return shape;
  return std::nullopt;
}

// RFC 9110 token characters, for header names.
bool is_token(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// A header value must not smuggle a second header or line (CR, LF) or any other control
// character except horizontal tab.
bool is_header_value(std::string_view text) {
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && byte != '\t') || byte == 0x7F) return false;
  }
  return true;
}

std::optional<std::string> check_parameters(const json& parameters) {
  if (!parameters.is_object()) return std::string(kParametersMessage);
  std::vector<std::string> problems;
  if (const auto it = parameters.find("method"); it != parameters.end()) {
    bool known = false;
    if (it->is_string())
      for (auto m : kMethods) known = known || it->get_ref<const std::string&>() == m;
    if (!known)
      problems.push_back("method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
  }
  if (const auto it = parameters.find("headers"); it != parameters.end()) {
    bool ok = it->is_object();
    if (ok)
      for (const auto& [key, value] : it->items())
        ok = ok && is_token(key) && value.is_string() &&
             is_header_value(value.get_ref<const std::string&>());
    if (!ok)
      problems.push_back(
          "headers must be an object of header names to string values, without line breaks");
  }
  if (const auto it = parameters.find("query"); it != parameters.end()) {
    bool ok = it->is_object();
    if (ok)
      for (const auto& [key, value] : it->items())
        ok = ok && (value.is_string() || value.is_number() || value.is_boolean());
    if (!ok) problems.push_back("query must be an object of strings, numbers or booleans");
  }
  for (const char* key : {"path", "eventfile"}) {
    if (const auto it = parameters.find(key); it != parameters.end() && !it->is_string())
      problems.push_back(std::string(key) + " must be a string");
  }
  if (problems.empty()) return std::nullopt;
  std::string message = problems.front();
  for (std::size_t i = 1; i < problems.size(); ++i) message += "; " + problems[i];
  return message;
}

void check_spec(const TaskSpec& spec, FieldErrors& errors) {
  if (auto message = check_name(spec.name)) errors.add("name", std::move(*message));
  if (auto message = check_url(spec.url)) errors.add("url", std::move(*message));
  if (auto message = check_parameters(spec.parameters))
    errors.add("parameters", std::move(*message));
  if (spec.end_time <= spec.start_time) errors.add("end_time", "must be after start_time");
  if (spec.task_interval < 1 || spec.task_interval > TaskLimits::kIntervalMax)
    errors.add("task_interval", range_message(1, TaskLimits::kIntervalMax));
  if (spec.max_execution_time < 0 || spec.max_execution_time > TaskLimits::kExecutionTimeMax)
    errors.add("max_execution_time", range_message(0, TaskLimits::kExecutionTimeMax));
  if (spec.max_attempt < 1 || spec.max_attempt > TaskLimits::kMaxAttemptMax)
    errors.add("max_attempt", range_message(1, TaskLimits::kMaxAttemptMax));
}

// Hands one field of the body to `read` when present (which stores it, or returns what is
// wrong with it); records "required" when a required field is absent.
template <typename Read>
void read_field(const json& body, std::string_view field, bool required, FieldErrors& errors,
                Read&& read) {
  const auto it = body.find(field);
  if (it == body.end()) {
    if (required) errors.add(field, "required");
    return;
  }
  if (auto message = read(*it)) errors.add(field, std::move(*message));
}

}  // namespace

Result<TaskSpec> task_spec_from_json(const json& body, const TaskSpec* base) {
  if (!body.is_object()) return fail(ErrorCode::kMalformed, "request body must be a JSON object");

  const bool creating = base == nullptr;
  TaskSpec spec = creating ? TaskSpec{} : *base;
  FieldErrors errors;
  using Message = std::optional<std::string>;

  auto read_string = [](std::string& target) {
    return [&target](const json& value) -> Message {
      if (!value.is_string()) return "must be a string";
      target = value.get<std::string>();
      return std::nullopt;
    };
  };
  auto read_time = [](TimePoint& target) {
    return [&target](const json& value) -> Message {
      const auto parsed =
          value.is_string() ? parse_rfc3339(value.get_ref<const std::string&>()) : std::nullopt;
      if (!parsed) return std::string(kTimeMessage);
      target = *parsed;
      return std::nullopt;
    };
  };
  auto read_integer = [](std::int64_t& target, std::int64_t low, std::int64_t high) {
    return [&target, low, high](const json& value) -> Message {
      const auto parsed = integer_value(value);
      if (!parsed || *parsed < low || *parsed > high) return range_message(low, high);
      target = *parsed;
      return std::nullopt;
    };
  };

  read_field(body, "name", creating, errors, read_string(spec.name));
  read_field(body, "url", creating, errors, read_string(spec.url));
  read_field(body, "parameters", false, errors, [&spec](const json& value) -> Message {
    if (value.is_object()) {
      spec.parameters = value;
      return std::nullopt;
    }
    if (value.is_string()) {
      // The original client sends parameters JSON-encoded ("{}"); no exceptions on bad text.
      auto parsed = json::parse(value.get_ref<const std::string&>(), nullptr, false);
      if (!parsed.is_discarded() && parsed.is_object()) {
        spec.parameters = std::move(parsed);
        return std::nullopt;
      }
    }
    return std::string(kParametersMessage);
  });
  read_field(body, "start_time", creating, errors, read_time(spec.start_time));
  read_field(body, "end_time", creating, errors, read_time(spec.end_time));
  read_field(body, "task_interval", creating, errors,
             read_integer(spec.task_interval, 1, TaskLimits::kIntervalMax));
  read_field(body, "max_execution_time", false, errors,
             read_integer(spec.max_execution_time, 0, TaskLimits::kExecutionTimeMax));
  read_field(body, "max_attempt", false, errors,
             read_integer(spec.max_attempt, 1, TaskLimits::kMaxAttemptMax));

  // The value rules on the merged spec. A field that could not be read already has its error;
  // and "end_time must be after start_time" means nothing when either time is unknown.
  const bool times_known = !errors.has("start_time") && !errors.has("end_time");
  FieldErrors rules;
  check_spec(spec, rules);
  for (auto& e : std::move(rules).sorted())
    if (e.field != "end_time" || times_known) errors.add(e.field, std::move(e.message));

  if (errors.empty()) return spec;
  Error error = Error::make(ErrorCode::kInvalid, "the task has invalid fields");
  error.fields = std::move(errors).sorted();
  return tl::unexpected(std::move(error));
}

std::vector<FieldError> validate_task_spec(const TaskSpec& spec) {
  FieldErrors errors;
  check_spec(spec, errors);
  return std::move(errors).sorted();
}

}  // namespace fetchd
