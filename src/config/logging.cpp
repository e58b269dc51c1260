// The log line formatters (text and JSON) and the logger factory.
#include "config/logging.hpp"

#include <chrono>

#include <spdlog/sinks/stdout_sinks.h>
#include <nlohmann/json.hpp>

#include "core/time.hpp"

namespace fetchd {

namespace {

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

void append(spdlog::memory_buf_t& dest, std::string_view text) {
  dest.append(text.data(), text.data() + text.size());
}

std::string timestamp(const spdlog::details::log_msg& msg) {
  return format_rfc3339(std::chrono::time_point_cast<Millis>(msg.time));
}

class TextFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    append(dest, timestamp(msg));
    dest.push_back(' ');
    std::string_view level = level_name(msg.level);
    append(dest, level);
    for (std::size_t i = level.size(); i < 5; ++i) dest.push_back(' ');  // align messages
    dest.push_back(' ');
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      auto u = static_cast<unsigned char>(c);
      if (c == '\n') {
        append(dest, "\\n");
      } else if (c == '\r') {
        append(dest, "\\r");
      } else if ((u < 0x20 && c != '\t') || u == 0x7f) {
        constexpr char kHex[] = "0123456789abcdef";
        append(dest, "\\x");
        dest.push_back(kHex[u >> 4]);
        dest.push_back(kHex[u & 0xf]);
      } else {
        dest.push_back(c);
      }
    }
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<TextFormatter>();
  }
};

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    append(dest, R"({"time":")");
    append(dest, timestamp(msg));
    append(dest, R"(","level":")");
    append(dest, level_name(msg.level));
    append(dest, R"(","msg":)");
    // nlohmann escapes quotes, backslashes and control characters, and replaces invalid UTF-8
    // with U+FFFD so that the line stays valid JSON whatever the message holds.
    nlohmann::json text = std::string(msg.payload.data(), msg.payload.size());
    append(dest, text.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    append(dest, "}\n");
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

std::optional<LogFormat> parse_log_format(std::string_view text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  return std::nullopt;
}

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view text) {
  if (text == "trace") return spdlog::level::trace;
  if (text == "debug") return spdlog::level::debug;
  if (text == "info") return spdlog::level::info;
  if (text == "warn") return spdlog::level::warn;
  if (text == "error") return spdlog::level::err;
  if (text == "off") return spdlog::level::off;
  return std::nullopt;
}

std::unique_ptr<spdlog::formatter> make_log_formatter(LogFormat format) {
  if (format == LogFormat::kJson) return std::make_unique<JsonFormatter>();
  return std::make_unique<TextFormatter>();
}

Result<std::shared_ptr<spdlog::logger>> make_logger(const Config& config, std::string name) {
  return make_logger_on(config, std::make_shared<spdlog::sinks::stderr_sink_mt>(), std::move(name));
}

Result<std::shared_ptr<spdlog::logger>> make_logger_on(const Config& config, spdlog::sink_ptr sink,
                                                       std::string name) {
  auto level = parse_log_level(config.log_level);
  if (!level) return fail(ErrorCode::kInvalid, "unknown log_level \"" + config.log_level + "\"");
  auto format = parse_log_format(config.log_format);
  if (!format) {
    return fail(ErrorCode::kInvalid, "unknown log_format \"" + config.log_format + "\"");
  }
  sink->set_formatter(make_log_formatter(*format));
  auto logger = std::make_shared<spdlog::logger>(std::move(name), std::move(sink));
  logger->set_level(*level);
  return logger;
}

}  // namespace fetchd
