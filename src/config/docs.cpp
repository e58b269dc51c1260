// example_toml and markdown_table: both walk option_table(), one row per option.
#include "config/docs.hpp"

#include <string_view>
#include <vector>

#include "config/options.hpp"

namespace fetchd {

namespace {

constexpr std::size_t kWidth = 98;  // the repo's 100 columns minus "# "

// Word-wraps `text` into lines of at most kWidth characters, each prefixed with "# ".
std::string comment(std::string_view text) {
  std::string out;
  std::string line;
  while (!text.empty()) {
    auto space = text.find(' ');
    std::string_view word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    if (!line.empty() && line.size() + 1 + word.size() > kWidth) {
      out += "# " + line + "\n";
      line.clear();
    }
    if (!line.empty()) line += ' ';
    line += word;
  }
  if (!line.empty()) out += "# " + line + "\n";
  return out;
}

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string toml_value(const OptionSpec& spec) {
  switch (spec.type) {
    case OptionType::kBool:
    case OptionType::kInt:
      return std::string(spec.default_value);
    default:
      return toml_string(spec.default_value);
  }
}

std::string choices_text(std::string_view choices, std::string_view quote) {
  std::string out;
  while (!choices.empty()) {
    auto bar = choices.find('|');
    if (!out.empty()) out += ", ";
    out += std::string(quote) + std::string(choices.substr(0, bar)) + std::string(quote);
    if (bar == std::string_view::npos) break;
    choices.remove_prefix(bar + 1);
  }
  return out;
}

std::string bound(const OptionSpec& spec, std::int64_t v) {
  if (spec.type == OptionType::kDuration) return format_duration(std::chrono::milliseconds(v));
  if (spec.type == OptionType::kBytes) return format_bytes(static_cast<std::uint64_t>(v));
  return std::to_string(v);
}

// "Range: 1m to 365d." / "One of: text, json." / "" — what the value may be, beyond its type.
std::string allowed(const OptionSpec& spec, std::string_view quote) {
  switch (spec.type) {
    case OptionType::kInt:
    case OptionType::kDuration:
    case OptionType::kBytes:
      return "Range: " + bound(spec, spec.min) + " to " + bound(spec, spec.max) + ".";
    case OptionType::kEnum:
      return "One of: " + choices_text(spec.choices, quote) + ".";
    default:
      return "";
  }
}

std::string markdown_cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

// Top-level options first (TOML keys before any [table]), then each table in table order.
std::vector<std::vector<const OptionSpec*>> sections() {
  std::vector<std::vector<const OptionSpec*>> out(1);
  for (const auto& spec : option_table()) {
    if (toml_table(spec).empty()) {
      out[0].push_back(&spec);
      continue;
    }
    auto it = out.begin() + 1;
    while (it != out.end() && toml_table(*it->front()) != toml_table(spec)) ++it;
    if (it == out.end()) {
      out.push_back({&spec});
    } else {
      it->push_back(&spec);
    }
  }
  return out;
}

}  // namespace

std::string example_toml() {
  std::string out =
      "# fetchd.example.toml: every configuration option of fetchd, with its default.\n"
      "#\n"
      "# Generated from the option table (src/config/options.cpp) by example_toml(); a unit\n"
      "# test keeps this file in step with it. Every line is commented out, so as shipped it\n"
      "# changes nothing: copy it, uncomment what you want to change, and start fetchd with\n"
      "# `--config FILE` (or the environment variable FETCHD_CONFIG=FILE).\n"
      "#\n"
      "# Precedence: command-line flags > environment variables > this file > defaults.\n"
      "# Durations: 500ms, 90s (a plain number is seconds), 15m, 24h, 7d.\n"
      "# Sizes: 1048576 (bytes), 512KiB, 1MiB, 1GiB. Booleans: true or false.\n"
      "# Unknown keys are an error, so that a typo never passes silently.\n";
  for (const auto& section : sections()) {
    if (section.empty()) continue;
    std::string_view table = toml_table(*section.front());
    if (!table.empty()) out += "\n# [" + std::string(table) + "]\n";
    for (const OptionSpec* spec : section) {
      out += "\n";
      out += comment(spec->help);
      if (auto rule = allowed(*spec, "\""); !rule.empty()) out += comment(rule);
      out += "# flag: " + flag_name(*spec) + "    env: " + env_name(*spec) + "\n";
      out += "# " + std::string(toml_key(*spec)) + " = " + toml_value(*spec) + "\n";
    }
  }
  return out;
}

std::string markdown_table() {
  std::string out =
      "| Option | Flag | Environment | Default | Description |\n"
      "| --- | --- | --- | --- | --- |\n";
  for (const auto& spec : option_table()) {
    std::string description(spec.help);
    if (auto rule = allowed(spec, "`"); !rule.empty()) description += " " + rule;
    out += "| `" + std::string(spec.name) + "` | `" + flag_name(spec) + "` | `" + env_name(spec) +
           "` | `" + std::string(spec.default_value) + "` | " + markdown_cell(description) + " |\n";
  }
  return out;
}

}  // namespace fetchd
