// The process's logger, built from the log options: one line per message on stderr, either
// text for people or one JSON object per line for collectors. Never registered globally:
// whoever needs it receives the shared_ptr.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>
#include <spdlog/logger.h>

#include "config/config.hpp"
#include "core/error.hpp"

namespace fetchd {

enum class LogFormat { kText, kJson };

std::optional<LogFormat> parse_log_format(std::string_view text);  // "text" | "json"
// "trace" | "debug" | "info" | "warn" | "error" | "off"
std::optional<spdlog::level::level_enum> parse_log_level(std::string_view text);

// text: `2026-11-27T03:22:02.123Z info  message`
// json: `{"time":"2026-11-27T03:22:02.123Z","level":"info","msg":"message"}`
// Times are UTC with milliseconds. Control characters in the message are escaped in both
// formats, so a message can never forge a second line.
std::unique_ptr<spdlog::formatter> make_log_formatter(LogFormat format);

// A logger on stderr with the level and format of `config`; kInvalid if either is unknown.
Result<std::shared_ptr<spdlog::logger>> make_logger(const Config& config,
                                                    std::string name = "fetchd");
// The same on a given sink (tests capture the output with an ostream sink).
Result<std::shared_ptr<spdlog::logger>> make_logger_on(const Config& config, spdlog::sink_ptr sink,
                                                       std::string name = "fetchd");

}  // namespace fetchd
