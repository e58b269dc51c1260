// Query strings, cursors and ids in paths.
#include "api/query.hpp"

#include <charconv>

#include "api/openapi.hpp"

namespace fetchd::api {

namespace {

constexpr std::string_view kBase64Url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::string_view kCursorPrefix = "t1:";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string form_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
               hex_value(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string base64url_encode(std::string_view data) {
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const unsigned char c : data) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kBase64Url[(buffer >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(kBase64Url[(buffer << (6 - bits)) & 0x3F]);
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const char c : text) {
    const auto index = kBase64Url.find(c);
    if (index == std::string_view::npos) return std::nullopt;
    buffer = (buffer << 6) | static_cast<std::uint32_t>(index);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  // A lone trailing character (6 bits) or non-zero padding bits: not something we produced.
  if (bits >= 6 || (buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    if (!pair.empty()) {
      const auto eq = pair.find('=');
      if (eq == std::string_view::npos) {
        params.emplace_back(form_decode(pair), std::string());
      } else {
        params.emplace_back(form_decode(pair.substr(0, eq)), form_decode(pair.substr(eq + 1)));
      }
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return params;
}

std::optional<std::string> query_value(
    const std::vector<std::pair<std::string, std::string>>& params, std::string_view name) {
  for (const auto& [key, value] : params)
    if (key == name) return value;
  return std::nullopt;
}

std::string encode_cursor(std::int64_t last_id) {
  return base64url_encode(std::string(kCursorPrefix) + std::to_string(last_id));
}

std::optional<std::int64_t> decode_cursor(std::string_view cursor) {
  const auto decoded = base64url_decode(cursor);
  if (!decoded || !std::string_view(*decoded).starts_with(kCursorPrefix)) return std::nullopt;
  return parse_positive_id(std::string_view(*decoded).substr(kCursorPrefix.size()));
}

std::size_t read_page_limit(const QueryParams& params, std::vector<FieldError>& fields) {
  const auto limit = query_value(params, "limit");
  if (!limit) return PageLimits::kDefault;
  std::size_t value = 0;
  const auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), value);
  if (limit->empty() || ec != std::errc() || end != limit->data() + limit->size() || value < 1 ||
      value > PageLimits::kMax) {
    fields.push_back({"limit", "must be an integer from 1 to " + std::to_string(PageLimits::kMax)});
    return PageLimits::kDefault;
  }
  return value;
}

std::optional<std::int64_t> read_cursor(const QueryParams& params,
                                        std::vector<FieldError>& fields) {
  const auto cursor = query_value(params, "cursor");
  if (!cursor || cursor->empty()) return std::nullopt;
  const auto id = decode_cursor(*cursor);
  if (!id) fields.push_back({"cursor", "is not a cursor this server returned in next_cursor"});
  return id;
}

std::optional<std::int64_t> parse_positive_id(std::string_view text) {
  if (text.empty() || text.front() < '1' || text.front() > '9') return std::nullopt;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace fetchd::api
