// Command-line flags of the option table: --config FILE and one --<flag-name> per option,
// registered on a CLI11 app. Only what is actually given lands in ConfigSources.flags, so that
// an absent flag never hides the environment or the config file.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace fetchd {

// Registers, in the group "Configuration": `--config FILE` (into config_file_out) and, for
// every row of option_table(), `--<flag-name> VALUE` whose raw text goes into
// flags_out[row name] when given (bool rows are flags: `--fetch-allow-private` means true,
// `--fetch-allow-private=false` is explicit). Values are checked later by load_config, which
// names the flag in its error. Both outputs must outlive app.parse().
void add_config_options(CLI::App& app, std::map<std::string, std::string>& flags_out,
                        std::optional<std::string>& config_file_out);

}  // namespace fetchd
