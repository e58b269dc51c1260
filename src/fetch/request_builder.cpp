// build_fetch_request: parameters (method, headers, query, body, path/eventfile, placeholders)
// applied to a task's URL. String surgery on the URL's parts only; curl parses the result.
#include "fetch/request_builder.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

namespace fetchd {

namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 7> kMethods{"GET",    "POST", "PUT",    "PATCH",
                                                   "DELETE", "HEAD", "OPTIONS"};

// Keys that shape the request itself; they never fill a placeholder (path and eventfile may,
// and are then not appended).
constexpr std::array<std::string_view, 4> kRequestKeys{"method", "headers", "query", "body"};
constexpr std::array<std::string_view, 2> kPathKeys{"path", "eventfile"};

bool contains(const auto& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool is_unreserved(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

bool is_hex(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}

void append_escaped(std::string& out, char c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const auto byte = static_cast<unsigned char>(c);
  out += '%';
  out += kHex[byte >> 4];
  out += kHex[byte & 0x0F];
}

// A path appended to the URL: RFC 3986 pchar and '/' stay, as do %XX escapes the task
// already wrote (so "a%20b.json" is not turned into "a%2520b.json").
std::string encode_path(std::string_view text) {
  constexpr std::string_view kKept = "/!$&'()*+,;=:@";
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool escape_kept =
        c == '%' && i + 2 < text.size() && is_hex(text[i + 1]) && is_hex(text[i + 2]);
    if (is_unreserved(c) || kKept.find(c) != std::string_view::npos || escape_kept)
      out += c;
    else
      append_escaped(out, c);
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  return (std::tolower(static_cast<unsigned char>(c)) - 'a') + 10;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && is_hex(text[i + 1]) && is_hex(text[i + 2])) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += text[i] == '+' ? ' ' : text[i];
    }
  }
  return out;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// RFC 9110 token, for header names.
bool is_token(std::string_view text) {
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return !text.empty() && std::all_of(text.begin(), text.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           kSymbols.find(c) != std::string_view::npos;
  });
}

bool is_header_value(std::string_view text) {
  return std::none_of(text.begin(), text.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return (byte < 0x20 && byte != '\t') || byte == 0x7F;
  });
}

bool is_placeholder_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
  });
}

// The text a scalar parameter stands for in a URL; nullopt for objects, arrays and null.
std::optional<std::string> scalar_text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number_integer() || value.is_number_unsigned() || value.is_number_float())
    return value.dump();
  return std::nullopt;
}

tl::unexpected<Error> invalid(std::string message) {
  return fail(ErrorCode::kInvalid, std::move(message));
}

// Replaces every {name} (name of letters, digits, '_', '-', '.') by its parameter's value;
// `used` collects the names filled. Other braces are left alone.
Result<std::string> fill_placeholders(const std::string& url, const json& parameters,
                                      std::set<std::string>& used) {
  std::string out;
  out.reserve(url.size());
  std::size_t i = 0;
  while (i < url.size()) {
    const auto open = url.find('{', i);
    if (open == std::string::npos) break;
    const auto close = url.find('}', open + 1);
    if (close == std::string::npos) break;
    const std::string name = url.substr(open + 1, close - open - 1);
    if (!is_placeholder_name(name)) {
      out.append(url, i, open + 1 - i);
      i = open + 1;
      continue;
    }
    std::optional<std::string> value;
    if (const auto it = parameters.find(name);
        it != parameters.end() && !contains(kRequestKeys, name))
      value = scalar_text(*it);
    if (!value) return invalid("URL placeholder {" + name + "} has no value in parameters");
    out.append(url, i, open - i);
    out += percent_encode(*value);
    used.insert(name);
    i = close + 1;
  }
  out.append(url, i, std::string::npos);
  return out;
}

struct UrlParts {
  std::string origin;  // scheme://authority
  std::string path;
  std::optional<std::string> query;
  std::optional<std::string> fragment;

  std::string str() const {
    std::string out = origin + path;
    if (query) out += "?" + *query;
    if (fragment) out += "#" + *fragment;
    return out;
  }
};

Result<UrlParts> split_url(const std::string& url) {
  constexpr std::string_view kShape = "url must be an absolute http or https URL with a host";
  for (char c : url) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7F)
      return invalid("url must not contain spaces or control characters (percent-encode them)");
  }
  const auto colon = url.find(':');
  if (colon == std::string::npos) return invalid(std::string(kShape));
  const std::string_view scheme(url.data(), colon);
  if (!equals_ignoring_case(scheme, "http") && !equals_ignoring_case(scheme, "https"))
    return invalid("url scheme must be http or https, not \"" + std::string(scheme) + "\"");
  if (url.compare(colon + 1, 2, "//") != 0) return invalid(std::string(kShape));
  const auto authority_start = colon + 3;
  auto authority_end = url.find_first_of("/?#", authority_start);
  if (authority_end == std::string::npos) authority_end = url.size();
  if (authority_end == authority_start) return invalid(std::string(kShape));

  UrlParts parts;
  parts.origin = url.substr(0, authority_end);
  std::string rest = url.substr(authority_end);
  if (const auto hash = rest.find('#'); hash != std::string::npos) {
    parts.fragment = rest.substr(hash + 1);
    rest.resize(hash);
  }
  if (const auto question = rest.find('?'); question != std::string::npos) {
    parts.query = rest.substr(question + 1);
    rest.resize(question);
  }
  parts.path = std::move(rest);
  return parts;
}

void append_path(UrlParts& url, std::string_view segment) {
  while (!segment.empty() && segment.front() == '/') segment.remove_prefix(1);
  if (segment.empty()) return;
  while (!url.path.empty() && url.path.back() == '/') url.path.pop_back();
  url.path += '/';
  url.path += encode_path(segment);
}

Result<void> merge_query(UrlParts& url, const json& query) {
  if (!query.is_object()) return invalid("query must be an object of strings, numbers or booleans");
  std::vector<std::string> pairs;
  for (const auto& [name, value] : query.items()) {
    const auto text = scalar_text(value);
    if (!text)
      return invalid("query value of \"" + name + "\" must be a string, number or boolean");
    pairs.push_back(percent_encode(name) + "=" + percent_encode(*text));
  }
  if (pairs.empty()) return {};
  std::vector<std::string> kept;
  if (url.query) {
    std::string_view existing = *url.query;
    while (!existing.empty()) {
      const auto amp = existing.find('&');
      const auto pair = existing.substr(0, amp);
      existing = amp == std::string_view::npos ? std::string_view{} : existing.substr(amp + 1);
      if (pair.empty()) continue;
      const auto name = percent_decode(pair.substr(0, pair.find('=')));
      if (!query.contains(name)) kept.emplace_back(pair);
    }
  }
  kept.insert(kept.end(), pairs.begin(), pairs.end());
  std::string merged;
  for (const auto& pair : kept) {
    if (!merged.empty()) merged += '&';
    merged += pair;
  }
  url.query = std::move(merged);
  return {};
}

Result<void> read_headers(FetchRequest& request, const json& headers) {
  const std::string shape =
      "headers must be an object of header names to string values, without line breaks";
  if (!headers.is_object()) return invalid(shape);
  for (const auto& [name, value] : headers.items()) {
    if (!is_token(name)) return invalid("header name \"" + name + "\" is not a valid token");
    if (!value.is_string()) return invalid("header \"" + name + "\" must have a string value");
    const auto& text = value.get_ref<const std::string&>();
    if (!is_header_value(text))
      return invalid("header \"" + name + "\" must not contain line breaks or control characters");
    request.headers.emplace_back(name, text);
  }
  return {};
}

Result<FetchRequest> build(const std::string& url_text, const json& raw_parameters,
                           std::chrono::milliseconds timeout, std::uint64_t max_response_bytes) {
  json parameters = raw_parameters;
  if (parameters.is_string()) {
    // Stored as the original client sends it: JSON-encoded ("{}").
    parameters = json::parse(raw_parameters.get_ref<const std::string&>(), nullptr, false);
    if (parameters.is_discarded()) return invalid("parameters must be a JSON object");
  }
  if (parameters.is_null()) parameters = json::object();
  if (!parameters.is_object()) return invalid("parameters must be a JSON object");
  if (timeout.count() <= 0) return invalid("timeout must be positive");

  FetchRequest request;
  request.timeout = timeout;
  request.max_response_bytes = max_response_bytes;

  if (const auto it = parameters.find("method"); it != parameters.end()) {
    std::string method = it->is_string() ? it->get<std::string>() : std::string();
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (!contains(kMethods, method))
      return invalid("method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
    request.method = std::move(method);
  }

  std::set<std::string> used;
  auto filled = fill_placeholders(url_text, parameters, used);
  if (!filled) return tl::unexpected(std::move(filled.error()));
  auto url = split_url(*filled);
  if (!url) return tl::unexpected(std::move(url.error()));

  for (std::string_view key : kPathKeys) {
    const auto it = parameters.find(key);
    if (it == parameters.end() || used.contains(std::string(key))) continue;
    if (!it->is_string()) return invalid(std::string(key) + " must be a string");
    append_path(*url, it->get_ref<const std::string&>());
  }

  if (const auto it = parameters.find("query"); it != parameters.end())
    if (auto merged = merge_query(*url, *it); !merged) return tl::unexpected(merged.error());
  request.url = url->str();

  if (const auto it = parameters.find("headers"); it != parameters.end())
    if (auto read = read_headers(request, *it); !read) return tl::unexpected(read.error());

  if (const auto it = parameters.find("body"); it != parameters.end() && !it->is_null()) {
    if (it->is_string()) {
      request.body = it->get<std::string>();
    } else {
      request.body = it->dump(-1, ' ', false, json::error_handler_t::replace);
      const bool typed =
          std::any_of(request.headers.begin(), request.headers.end(),
                      [](const auto& h) { return equals_ignoring_case(h.first, "Content-Type"); });
      if (!typed) request.headers.emplace_back("Content-Type", "application/json");
    }
  }
  return request;
}

}  // namespace

std::string percent_encode(std::string_view text, bool keep_slash) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (is_unreserved(c) || (keep_slash && c == '/'))
      out += c;
    else
      append_escaped(out, c);
  }
  return out;
}

Result<FetchRequest> build_fetch_request(const std::string& url, const nlohmann::json& parameters,
                                         std::chrono::milliseconds timeout,
                                         std::uint64_t max_response_bytes) {
  try {
    return build(url, parameters, timeout, max_response_bytes);
  } catch (const std::exception& e) {
    // nlohmann::json or allocation failures; the inputs were validated by the API already.
    return fail(ErrorCode::kInvalid, "parameters could not be applied to the URL", e.what());
  }
}

}  // namespace fetchd
