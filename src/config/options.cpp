// The option table (one row per setting, Redis config.c style) and the parsers every source
// goes through, so that a flag, an environment variable and a TOML key accept the same text.
#include "config/options.hpp"

#include "core/address_guard.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>
#include <variant>

namespace fetchd {

namespace {

using std::chrono::milliseconds;

constexpr std::int64_t kSecond = 1000;
constexpr std::int64_t kMinute = 60 * kSecond;
constexpr std::int64_t kHour = 60 * kMinute;
constexpr std::int64_t kDay = 24 * kHour;
constexpr std::int64_t kKiB = 1024;
constexpr std::int64_t kMiB = 1024 * kKiB;
constexpr std::int64_t kGiB = 1024 * kMiB;

// clang-format off
constexpr std::array kOptions = {
    OptionSpec{"listen", OptionType::kString, "127.0.0.1:8000", 0, 0, "",
               "Address the HTTP API listens on, as host:port (IPv6 as [::1]:8000). Port 0 picks "
               "a free port."},
    OptionSpec{"db", OptionType::kString, "sqlite://./fetchd.db", 0, 0, "",
               "Database URL: sqlite://./fetchd.db (relative path), sqlite:///var/lib/fetchd.db "
               "(absolute path), or postgres://... for scale-out."},
    OptionSpec{"log_level", OptionType::kEnum, "info", 0, 0, "trace|debug|info|warn|error|off",
               "Lowest level of the log lines written to stderr."},
    OptionSpec{"log_format", OptionType::kEnum, "text", 0, 0, "text|json",
               "Format of the log lines on stderr: text for people, json (one object per line) "
               "for log collectors."},
    OptionSpec{"auth.token_ttl", OptionType::kDuration, "24h", kSecond, 365 * kDay, "",
               "How long an access token issued by POST /login stays valid."},
    OptionSpec{"auth.open_registration", OptionType::kBool, "true", 0, 0, "",
               "Let anyone create an account with POST /register. When false, only an admin "
               "(fetchd user add) creates users."},
    OptionSpec{"auth.login_max_failures", OptionType::kInt, "5", 0, 1000, "",
               "Failed logins within auth.login_window, for one username or from one address, "
               "after which POST /login answers 429 (with Retry-After). 0: no limit."},
    OptionSpec{"auth.login_window", OptionType::kDuration, "15m", kSecond, kDay, "",
               "The window auth.login_max_failures counts failures in."},
    OptionSpec{"http.max_body_bytes", OptionType::kBytes, "1MiB", kKiB, kGiB, "",
               "Largest request body accepted; a bigger one is answered 413."},
    OptionSpec{"http.max_header_bytes", OptionType::kBytes, "16KiB", kKiB, kMiB, "",
               "Largest request line plus headers accepted; a bigger one is answered 431."},
    OptionSpec{"http.max_connections", OptionType::kInt, "10000", 1, 1'000'000, "",
               "Most client connections open at once; further ones are closed at once."},
    OptionSpec{"http.header_timeout", OptionType::kDuration, "10s", 100, kHour, "",
               "Time a client has to send the headers of a request."},
    OptionSpec{"http.body_timeout", OptionType::kDuration, "30s", 100, kHour, "",
               "Time a client has to send the body of a request once its headers arrived."},
    OptionSpec{"http.idle_timeout", OptionType::kDuration, "60s", 100, kHour, "",
               "How long an idle keep-alive connection stays open between requests."},
    OptionSpec{"http.threads", OptionType::kInt, "0", 0, 256, "",
               "Threads serving HTTP; 0 means one per CPU core."},
    OptionSpec{"fetch.allow_private", OptionType::kBool, "false", 0, 0, "",
               "Allow tasks to fetch loopback, private and link-local addresses (needed for the "
               "local demo). Off by default: it guards against SSRF."},
    OptionSpec{"broker", OptionType::kString, "local", 0, 0, "",
               "Work queue between scheduler and workers: local (in-process, for fetchd serve) "
               "or redis://host:port/db (Redis Streams, for several processes)."},
    OptionSpec{"broker_max_deliveries", OptionType::kInt, "5", 1, 1000, "",
               "With a Redis broker: a run delivered to workers more often than this (they "
               "died holding it) is recorded as failed instead of looping."},
    OptionSpec{"scheduler.lease_ttl", OptionType::kDuration, "5s", kSecond, kMinute, "",
               "With a Redis broker: how long the leading scheduler's lease lasts without "
               "renewal; a follower takes over within about this long after the leader dies."},
    OptionSpec{"fetch.allow_cidrs", OptionType::kString, "", 0, 0, "",
               "Comma-separated address ranges tasks may fetch although private, e.g. "
               "10.20.0.0/16,fd00::/8 (finer than fetch.allow_private)."},
    OptionSpec{"fetch.concurrency", OptionType::kInt, "512", 1, 100'000, "",
               "Most fetches in flight at once in this process. Runs fetched and awaiting "
               "their record do not hold a slot; claimed runs not yet recorded stay under 4 "
               "times this."},
    OptionSpec{"fetch.default_timeout", OptionType::kDuration, "30s", kSecond, kHour, "",
               "Time a run may take when its task's max_execution_time is 0."},
    OptionSpec{"fetch.max_response_bytes", OptionType::kBytes, "10MiB", kKiB, kGiB, "",
               "Largest response body (after decompression) a run accepts; a larger one fails "
               "the run."},
    OptionSpec{"limits.max_tasks_per_user", OptionType::kInt, "10000", 0, 100'000'000, "",
               "Most tasks one user may own; creating one more is answered 429. 0: no limit."},
    OptionSpec{"limits.min_interval", OptionType::kDuration, "1s", kSecond, kDay, "",
               "Shortest task_interval a task may have (422 below it)."},
    OptionSpec{"limits.max_parameters_bytes", OptionType::kBytes, "64KiB", 256, 16 * kMiB, "",
               "Largest `parameters` of a task, as JSON text (422 above it)."},
    OptionSpec{"retention.jobs_per_task", OptionType::kInt, "1000", 1, 100'000'000, "",
               "Jobs kept per task; the pruner deletes older ones (and data no job needs)."},
    OptionSpec{"retention.max_age", OptionType::kDuration, "30d", kMinute, 3650 * kDay, "",
               "Jobs older than this are deleted by the pruner."},
    OptionSpec{"worker.lease", OptionType::kDuration, "30s", 5 * kSecond, kHour, "",
               "How long a claimed run stays leased to its worker without a heartbeat; after "
               "that another worker may redo it."},
    OptionSpec{"shutdown_grace", OptionType::kDuration, "10s", 0, 10 * kMinute, "",
               "On SIGTERM, how long in-flight runs may take to finish; unfinished ones are "
               "redone at the next start."},
    OptionSpec{"demo", OptionType::kBool, "true", 0, 0, "",
               "Serve the sample event feeds under /demo/ (what fetchd db seed points tasks at "
               "by default)."},
};
// clang-format on

using Value = std::variant<std::string, bool, std::int64_t, milliseconds, std::uint64_t>;

// The one place that knows which Config field an option fills. A row without a field here is a
// bug, caught by the unit test that sets every row.
bool assign(Config& c, std::string_view name, Value v) {
  auto str = [&]() -> std::string& { return std::get<std::string>(v); };
  auto ms = [&] { return std::get<milliseconds>(v); };
  if (name == "listen") {
    c.listen = std::move(str());
  } else if (name == "db") {
    c.db = std::move(str());
  } else if (name == "log_level") {
    c.log_level = std::move(str());
  } else if (name == "log_format") {
    c.log_format = std::move(str());
  } else if (name == "auth.token_ttl") {
    c.auth_token_ttl = std::chrono::duration_cast<std::chrono::seconds>(ms());
  } else if (name == "auth.open_registration") {
    c.auth_open_registration = std::get<bool>(v);
  } else if (name == "http.max_body_bytes") {
    c.http_max_body_bytes = std::get<std::uint64_t>(v);
  } else if (name == "http.max_header_bytes") {
    c.http_max_header_bytes = std::get<std::uint64_t>(v);
  } else if (name == "http.max_connections") {
    c.http_max_connections = static_cast<std::uint64_t>(std::get<std::int64_t>(v));
  } else if (name == "http.header_timeout") {
    c.http_header_timeout = ms();
  } else if (name == "http.body_timeout") {
    c.http_body_timeout = ms();
  } else if (name == "http.idle_timeout") {
    c.http_idle_timeout = ms();
  } else if (name == "http.threads") {
    c.http_threads = static_cast<unsigned>(std::get<std::int64_t>(v));
  } else if (name == "fetch.allow_private") {
    c.fetch_allow_private = std::get<bool>(v);
  } else if (name == "broker") {
    c.broker = std::move(str());
  } else if (name == "broker_max_deliveries") {
    c.broker_max_deliveries = std::get<std::int64_t>(v);
  } else if (name == "scheduler.lease_ttl") {
    c.scheduler_lease_ttl = ms();
  } else if (name == "fetch.allow_cidrs") {
    c.fetch_allow_cidrs = std::move(str());
  } else if (name == "limits.max_tasks_per_user") {
    c.limits_max_tasks_per_user = std::get<std::int64_t>(v);
  } else if (name == "limits.min_interval") {
    c.limits_min_interval = ms();
  } else if (name == "limits.max_parameters_bytes") {
    c.limits_max_parameters_bytes = std::get<std::uint64_t>(v);
  } else if (name == "auth.login_max_failures") {
    c.auth_login_max_failures = std::get<std::int64_t>(v);
  } else if (name == "auth.login_window") {
    c.auth_login_window = ms();
  } else if (name == "fetch.concurrency") {
    c.fetch_concurrency = static_cast<std::size_t>(std::get<std::int64_t>(v));
  } else if (name == "fetch.default_timeout") {
    c.fetch_default_timeout = ms();
  } else if (name == "fetch.max_response_bytes") {
    c.fetch_max_response_bytes = std::get<std::uint64_t>(v);
  } else if (name == "retention.jobs_per_task") {
    c.retention_jobs_per_task = std::get<std::int64_t>(v);
  } else if (name == "retention.max_age") {
    c.retention_max_age = ms();
  } else if (name == "worker.lease") {
    c.worker_lease = ms();
  } else if (name == "shutdown_grace") {
    c.shutdown_grace = ms();
  } else if (name == "demo") {
    c.demo = std::get<bool>(v);
  } else {
    return false;
  }
  return true;
}

bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A non-negative decimal number followed by a suffix, e.g. "15" + "m".
std::optional<std::pair<std::uint64_t, std::string_view>> split_number(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0) return std::nullopt;
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + i, n);
  if (ec != std::errc() || end != text.data() + i) return std::nullopt;
  return std::pair{n, text.substr(i)};
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool enum_contains(std::string_view choices, std::string_view value) {
  while (!choices.empty()) {
    auto bar = choices.find('|');
    if (choices.substr(0, bar) == value) return true;
    if (bar == std::string_view::npos) break;
    choices.remove_prefix(bar + 1);
  }
  return false;
}

bool valid_hostname(std::string_view host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  });
}

bool valid_ipv6_literal(std::string_view host) {
  // Loose on purpose: the resolver has the last word; this only catches obvious mistakes.
  return host.find(':') != std::string_view::npos &&
         std::all_of(host.begin(), host.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '.' || c == '%';
         });
}

bool valid_db_url(std::string_view url) {
  for (std::string_view scheme : {"sqlite://", "postgres://", "postgresql://"}) {
    if (url.starts_with(scheme)) return url.size() > scheme.size();
  }
  return false;
}

bool valid_broker_url(std::string_view url) {
  return url == "local" || (url.starts_with("redis://") && url.size() > 8);
}

tl::unexpected<Error> invalid(std::string message) {
  return fail(ErrorCode::kInvalid, std::move(message));
}

std::string bound_text(const OptionSpec& spec, std::int64_t v) {
  switch (spec.type) {
    case OptionType::kDuration:
      return format_duration(milliseconds(v));
    case OptionType::kBytes:
      return format_bytes(static_cast<std::uint64_t>(v));
    default:
      return std::to_string(v);
  }
}

Result<void> check_bounds(const OptionSpec& spec, std::int64_t v) {
  if (v < spec.min || v > spec.max) {
    return invalid("must be between " + bound_text(spec, spec.min) + " and " +
                   bound_text(spec, spec.max));
  }
  return {};
}

}  // namespace

std::span<const OptionSpec> option_table() {
  return kOptions;
}

const OptionSpec* find_option(std::string_view name) {
  for (const auto& spec : kOptions) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::string flag_name(const OptionSpec& spec) {
  std::string out = "--";
  for (char c : spec.name) out += (c == '.' || c == '_') ? '-' : c;
  return out;
}

std::string env_name(const OptionSpec& spec) {
  std::string out = "FETCHD_";
  for (char c : spec.name) {
    out += (c == '.') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string_view toml_table(const OptionSpec& spec) {
  auto dot = spec.name.find('.');
  return dot == std::string_view::npos ? std::string_view() : spec.name.substr(0, dot);
}

std::string_view toml_key(const OptionSpec& spec) {
  auto dot = spec.name.find('.');
  return dot == std::string_view::npos ? spec.name : spec.name.substr(dot + 1);
}

std::string expected_text(const OptionSpec& spec) {
  switch (spec.type) {
    case OptionType::kString:
      if (spec.name == "listen") return "expected host:port like 127.0.0.1:8000 or [::1]:8000";
      if (spec.name == "db") {
        return "expected a database URL starting with sqlite://, postgres:// or postgresql://";
      }
      if (spec.name == "broker") return "expected local or a URL starting with redis://";
      return "expected a string";
    case OptionType::kBool:
      return "expected true or false (or 1/0, yes/no, on/off)";
    case OptionType::kInt:
      return "expected an integer";
    case OptionType::kDuration:
      return "expected a duration like 30s, 15m, 24h";
    case OptionType::kBytes:
      return "expected a size like 1048576, 512KiB, 1MiB, 1GiB";
    case OptionType::kEnum: {
      std::string out = "expected one of ";
      for (char c : spec.choices) {
        if (c == '|') {
          out += ", ";
        } else {
          out += c;
        }
      }
      return out;
    }
  }
  return "expected a valid value";
}

std::optional<milliseconds> parse_duration(std::string_view text) {
  auto parts = split_number(text);
  if (!parts) return std::nullopt;
  auto [n, unit] = *parts;
  std::int64_t factor = 0;
  if (unit.empty() || unit == "s") {
    factor = kSecond;
  } else if (unit == "ms") {
    factor = 1;
  } else if (unit == "m") {
    factor = kMinute;
  } else if (unit == "h") {
    factor = kHour;
  } else if (unit == "d") {
    factor = kDay;
  } else {
    return std::nullopt;
  }
  if (n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / factor)) {
    return std::nullopt;
  }
  return milliseconds(static_cast<std::int64_t>(n) * factor);
}

std::optional<std::uint64_t> parse_bytes(std::string_view text) {
  auto parts = split_number(text);
  if (!parts) return std::nullopt;
  auto [n, unit] = *parts;
  std::uint64_t factor = 0;
  if (unit.empty() || unit == "B") {
    factor = 1;
  } else if (unit == "KiB") {
    factor = kKiB;
  } else if (unit == "MiB") {
    factor = kMiB;
  } else if (unit == "GiB") {
    factor = kGiB;
  } else {
    return std::nullopt;
  }
  if (n > std::numeric_limits<std::uint64_t>::max() / factor) return std::nullopt;
  return n * factor;
}

std::optional<bool> parse_bool(std::string_view text) {
  for (std::string_view t : {"true", "1", "yes", "on"}) {
    if (iequals(text, t)) return true;
  }
  for (std::string_view f : {"false", "0", "no", "off"}) {
    if (iequals(text, f)) return false;
  }
  return std::nullopt;
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::string_view digits = text.starts_with('-') ? text.substr(1) : text;
  if (!is_digits(digits)) return std::nullopt;
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return n;
}

std::string format_duration(milliseconds d) {
  std::int64_t ms = d.count();
  if (ms != 0) {
    for (auto [factor, unit] : {std::pair{kDay, "d"}, std::pair{kHour, "h"},
                                std::pair{kMinute, "m"}, std::pair{kSecond, "s"}}) {
      if (ms % factor == 0) return std::to_string(ms / factor) + unit;
    }
  }
  return std::to_string(ms) + "ms";
}

std::string format_bytes(std::uint64_t bytes) {
  if (bytes != 0) {
    for (auto [factor, unit] :
         {std::pair{kGiB, "GiB"}, std::pair{kMiB, "MiB"}, std::pair{kKiB, "KiB"}}) {
      auto f = static_cast<std::uint64_t>(factor);
      if (bytes % f == 0) return std::to_string(bytes / f) + unit;
    }
  }
  return std::to_string(bytes) + "B";
}

std::optional<HostPort> parse_listen(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (!valid_ipv6_literal(host)) return std::nullopt;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (!valid_hostname(host)) return std::nullopt;
  }
  if (!is_digits(port) || port.size() > 5) return std::nullopt;
  unsigned value = 0;
  std::from_chars(port.data(), port.data() + port.size(), value);
  if (value > 65535) return std::nullopt;
  return HostPort{std::string(host), static_cast<std::uint16_t>(value)};
}

Result<void> set_option(Config& config, const OptionSpec& spec, std::string_view raw) {
  Value value;
  switch (spec.type) {
    case OptionType::kString:
      if (spec.name == "listen" && !parse_listen(raw)) return invalid(expected_text(spec));
      if (spec.name == "db" && !valid_db_url(raw)) return invalid(expected_text(spec));
      if (spec.name == "broker" && !valid_broker_url(raw)) return invalid(expected_text(spec));
      if (spec.name == "fetch.allow_cidrs") {
        if (auto ranges = parse_ip_ranges(raw); !ranges) return invalid(ranges.error().message);
      }
      value = std::string(raw);
      break;
    case OptionType::kEnum:
      if (!enum_contains(spec.choices, raw)) return invalid(expected_text(spec));
      value = std::string(raw);
      break;
    case OptionType::kBool: {
      auto b = parse_bool(raw);
      if (!b) return invalid(expected_text(spec));
      value = *b;
      break;
    }
    case OptionType::kInt: {
      auto n = parse_int(raw);
      if (!n) return invalid(expected_text(spec));
      if (auto ok = check_bounds(spec, *n); !ok) return ok;
      value = *n;
      break;
    }
    case OptionType::kDuration: {
      auto d = parse_duration(raw);
      if (!d) return invalid(expected_text(spec));
      if (auto ok = check_bounds(spec, d->count()); !ok) return ok;
      value = *d;
      break;
    }
    case OptionType::kBytes: {
      auto b = parse_bytes(raw);
      if (!b) return invalid(expected_text(spec));
      // Anything past int64 is over every maximum: report the bound, not the syntax.
      auto as_signed = static_cast<std::int64_t>(
          std::min<std::uint64_t>(*b, std::numeric_limits<std::int64_t>::max()));
      if (auto ok = check_bounds(spec, as_signed); !ok) return ok;
      value = *b;
      break;
    }
  }
  if (!assign(config, spec.name, std::move(value))) {
    return fail(ErrorCode::kInternal, "option " + std::string(spec.name) + " has no Config field");
  }
  return {};
}

}  // namespace fetchd
