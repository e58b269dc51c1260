// check_json: a validating scan that allocates nothing for the common case (a valid document),
// and a SAX handler over nlohmann's parser, keeping only a depth and a record count, for the
// verdict and the words of everything else.
#include "worker/json_check.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>

#include <nlohmann/json.hpp>

namespace fetchd {

namespace {

using Json = nlohmann::json;

// Keeps the parser's own words but drops its prefix and line/column, which mean little in a
// one-line feed: "[json.exception.parse_error.101] parse error at line 1, column 7: syntax
// error ..." -> "syntax error ...".
std::string parser_message(std::string_view what) {
  if (what.starts_with("[json.exception.")) {
    auto end = what.find("] ");
    if (end != std::string_view::npos) what.remove_prefix(end + 2);
  }
  if (what.starts_with("parse error")) {
    auto colon = what.find(": ");
    if (colon != std::string_view::npos) what.remove_prefix(colon + 2);
  }
  return std::string(what);
}

// Length of the valid UTF-8 sequence at the start of `s`, 0 when it is not one (RFC 3629:
// no overlongs, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence(std::string_view s) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto cont = [&](std::size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// The error text is stored and served as JSON, so it must be valid UTF-8 whatever the body
// held: bytes that are not are written as \xNN.
std::string printable_utf8(std::string_view s) {
  constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    std::size_t n = utf8_sequence(s);
    if (n == 0) {
      const auto u = static_cast<unsigned char>(s[0]);
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
      n = 1;
    } else {
      out.append(s.substr(0, n));
    }
    s.remove_prefix(n);
  }
  return out;
}

// The parser quotes the whole token it was reading ("last read: '...'"), which for a broken
// string can be megabytes of the body: keep only its end, where the problem is.
constexpr std::size_t kMaxTokenQuote = 40;

std::string shorten_token_quote(std::string message, const std::string& token) {
  if (token.size() <= kMaxTokenQuote) return message;
  const std::string quoted = "last read: '" + token + "'";
  const auto at = message.find(quoted);
  if (at == std::string::npos) return message;
  std::string_view tail = std::string_view(token).substr(token.size() - kMaxTokenQuote);
  while (!tail.empty() && (static_cast<unsigned char>(tail.front()) & 0xC0) == 0x80) {
    tail.remove_prefix(1);  // start on a character, not inside one
  }
  message.replace(at, quoted.size(), "last read: '\u2026" + std::string(tail) + "'");
  return message;
}

class CheckingSax {
 public:
  // Scalars and strings: only where they sit matters.
  bool null() { return value(); }
  bool boolean(bool) { return value(); }
  bool number_integer(Json::number_integer_t) { return value(); }
  bool number_unsigned(Json::number_unsigned_t) { return value(); }
  bool number_float(Json::number_float_t, const Json::string_t&) { return value(); }
  bool string(Json::string_t&) { return value(); }
  bool binary(Json::binary_t&) { return value(); }
  bool key(Json::string_t&) { return true; }

  bool start_object(std::size_t) {
    if (depth_ == 1 && top_is_array_) ++records_;
    return open();
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) {
    if (depth_ == 0) top_is_array_ = true;
    if (!value()) return false;
    return open();
  }
  bool end_array() { return close(); }

  bool parse_error(std::size_t position, const std::string& token,
                   const nlohmann::detail::exception& e) {
    error_ = "invalid JSON at byte " + std::to_string(position) + ": " +
             printable_utf8(shorten_token_quote(parser_message(e.what()), token));
    return false;
  }

  JsonCheck result(bool ok) && {
    JsonCheck check;
    if (!error_.empty()) {
      check.error = std::move(error_);
      return check;
    }
    if (!ok) {
      check.error = "invalid JSON";  // the parser stopped without saying why: never seen
      return check;
    }
    check.ok = true;
    if (top_is_array_ && all_objects_) check.records = records_;
    return check;
  }

 private:
  // A value that is not an object: inside the top-level array it spoils the record count.
  bool value() {
    if (depth_ == 1 && top_is_array_) all_objects_ = false;
    return true;
  }
  bool open() {
    if (++depth_ > kMaxJsonDepth) {
      error_ = "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    return true;
  }
  bool close() {
    --depth_;
    return true;
  }

  std::size_t depth_ = 0;
  bool top_is_array_ = false;
  bool all_objects_ = true;
  std::int64_t records_ = 0;
  std::string error_;
};

// The fast path: a validating scan that allocates nothing. It answers only what it is sure of
// (a valid document, with its record count); for anything it rejects or doubts, check_json asks
// nlohmann's parser, whose verdict and words are the reference (the slow path is for errors,
// which are rare). A differential test holds the two to the same verdicts.
class FastScan {
 public:
  explicit FastScan(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  // True: valid, and `records` set as check_json would. False: invalid or not sure.
  bool run(std::optional<std::int64_t>& records) {
    skip_ws();
    if (p_ == end_) return false;
    const bool top_array = *p_ == '[';
    bool all_objects = true;
    std::int64_t count = 0;
    if (top_array) {
      ++p_;
      if (++depth_ > kMaxJsonDepth) return false;
      skip_ws();
      if (p_ < end_ && *p_ == ']') {
        ++p_;
      } else {
        for (;;) {
          skip_ws();
          if (p_ < end_ && *p_ == '{') {
            ++count;
          } else {
            all_objects = false;
          }
          if (!value()) return false;
          skip_ws();
          if (p_ == end_) return false;
          if (*p_ == ',') {
            ++p_;
            continue;
          }
          if (*p_ != ']') return false;
          ++p_;
          break;
        }
      }
      --depth_;
    } else if (!value()) {
      return false;
    }
    skip_ws();
    if (p_ != end_) return false;
    records = top_array && all_objects ? std::optional<std::int64_t>(count) : std::nullopt;
    return true;
  }

 private:
  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() ||
        std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  bool value() {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{':
        return object();
      case '[':
        return array();
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  bool object() { return container<true>('}'); }
  bool array() { return container<false>(']'); }

  // An object (kKeyed: "key": value members) or an array (values), up to `close`.
  template <bool kKeyed>
  bool container(char close) {
    ++p_;
    if (++depth_ > kMaxJsonDepth) return false;
    skip_ws();
    if (p_ < end_ && *p_ == close) {
      ++p_;
      --depth_;
      return true;
    }
    for (;;) {
      skip_ws();
      if constexpr (kKeyed) {
        if (p_ == end_ || *p_ != '"' || !string()) return false;
        skip_ws();
        if (p_ == end_ || *p_ != ':') return false;
        ++p_;
        skip_ws();
      }
      if (!value()) return false;
      skip_ws();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != close) return false;
      ++p_;
      --depth_;
      return true;
    }
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // \uXXXX at p_ (after the backslash and 'u'); -1 when malformed.
  long code_unit() {
    if (end_ - p_ < 4) return -1;
    long unit = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = hex(p_[i]);
      if (h < 0) return -1;
      unit = unit * 16 + h;
    }
    p_ += 4;
    return unit;
  }

  bool string() {
    ++p_;  // the opening quote
    for (;;) {
      // The common case: a run of plain ASCII.
      while (p_ < end_) {
        const auto c = static_cast<unsigned char>(*p_);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++p_;
      }
      if (p_ == end_) return false;
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++p_ == end_) return false;
        const char e = *p_++;
        if (e == 'u') {
          const long unit = code_unit();
          if (unit < 0 || (unit >= 0xDC00 && unit <= 0xDFFF)) return false;
          if (unit >= 0xD800 && unit <= 0xDBFF) {  // a high surrogate needs its low half
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
            p_ += 2;
            const long low = code_unit();
            if (low < 0xDC00 || low > 0xDFFF) return false;
          }
        } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' &&
                   e != 'r' && e != 't') {
          return false;
        }
        continue;
      }
      const std::size_t n =
          utf8_sequence(std::string_view(p_, static_cast<std::size_t>(end_ - p_)));
      if (n == 0) return false;
      p_ += n;
    }
  }

  bool number() {
    const char* start = p_;
    if (p_ < end_ && *p_ == '-') ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    } else {
      return false;
    }
    bool plain_integer = true;
    if (p_ < end_ && *p_ == '.') {
      plain_integer = false;
      ++p_;
      if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      plain_integer = false;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    const auto length = static_cast<std::size_t>(p_ - start);
    // Short integers cannot overflow a double; anything else may (1e400): the parser decides,
    // unless strtod says the value is finite.
    if (plain_integer && length <= 300) return true;
    if (length > 64) return false;
    char buffer[65];
    std::memcpy(buffer, start, length);
    buffer[length] = '\0';
    const double d = std::strtod(buffer, nullptr);
    return std::isfinite(d);
  }

  const char* p_;
  const char* end_;
  std::size_t depth_ = 0;
};

JsonCheck check_json_slow(std::string_view body) {
  CheckingSax sax;
  try {
    const bool ok = Json::sax_parse(body.data(), body.data() + body.size(), &sax,
                                    nlohmann::detail::input_format_t::json, /*strict=*/true,
                                    /*ignore_comments=*/false);
    return std::move(sax).result(ok);
  } catch (const std::exception& e) {
    // sax_parse reports syntax errors through parse_error; anything thrown is exceptional
    // (out of memory), and still must not cross into the worker.
    return JsonCheck{false, std::nullopt, std::string("invalid JSON: ") + e.what()};
  }
}

}  // namespace

JsonCheck check_json(std::string_view body) {
  if (body.empty()) return JsonCheck{false, std::nullopt, "empty body is not JSON"};
  // A byte order mark the parser skips: leave such rare bodies to it.
  if (!body.starts_with("\xEF\xBB\xBF")) {
    JsonCheck check;
    if (FastScan(body).run(check.records)) {
      check.ok = true;
      return check;
    }
  }
  return check_json_slow(body);
}

JsonCheck check_json_reference(std::string_view body) {
  if (body.empty()) return JsonCheck{false, std::nullopt, "empty body is not JSON"};
  return check_json_slow(body);
}

}  // namespace fetchd
