// add_config_options: derives the CLI11 flags from the option table. Defaults are shown in
// --help but never stored, because an unset flag must leave the value to env, file, default.
#include "config/cli_options.hpp"

#include <CLI/CLI.hpp>

#include "config/options.hpp"

namespace fetchd {

namespace {

constexpr const char* kGroup = "Configuration";

std::string type_name(const OptionSpec& spec) {
  switch (spec.type) {
    case OptionType::kString:
      if (spec.name == "listen") return "HOST:PORT";
      if (spec.name == "db") return "URL";
      return "TEXT";
    case OptionType::kEnum:
      return std::string(spec.choices);
    case OptionType::kInt:
      return "INT";
    case OptionType::kDuration:
      return "DURATION";
    case OptionType::kBytes:
      return "SIZE";
    case OptionType::kBool:
      return "";
  }
  return "VALUE";
}

}  // namespace

void add_config_options(CLI::App& app, std::map<std::string, std::string>& flags_out,
                        std::optional<std::string>& config_file_out) {
  app.add_option_function<std::string>(
         "--config", [&config_file_out](const std::string& path) { config_file_out = path; },
         "TOML configuration file (env FETCHD_CONFIG); see fetchd.example.toml")
      ->type_name("FILE")
      ->group(kGroup);

  for (const auto& spec : option_table()) {
    std::string help = std::string(spec.help) + " (env " + env_name(spec) + ")";
    auto store = [&flags_out, name = std::string(spec.name)](const std::string& raw) {
      flags_out[name] = raw;
    };
    CLI::Option* option = nullptr;
    if (spec.type == OptionType::kBool) {
      // A flag: bare means "true", --flag=VALUE passes VALUE through for load_config to check.
      option = app.add_flag(flag_name(spec));
    } else {
      option = app.add_option(flag_name(spec))->type_name(type_name(spec));
    }
    option->description(help)
        ->default_str(std::string(spec.default_value))
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
        ->each(store)
        ->group(kGroup);
  }
}

}  // namespace fetchd
