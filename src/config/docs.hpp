// Documentation generated from the option table and the command line, so it cannot drift from
// the code: the commented reference config file (fetchd.example.toml), the README's
// configuration table, the manual page fetchd(1) and the shell completion scripts. Unit tests
// compare the committed copies with these functions.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace fetchd {

// Every option with its help, flag, environment variable, bounds and default, all commented
// out (Redis's redis.conf style): the file as shipped changes nothing.
std::string example_toml();

// A Markdown table (Option | Flag | Environment | Default | Description), ending in a newline;
// README.md holds it between `<!-- config-table:begin -->` and `<!-- config-table:end -->`.
std::string markdown_table();

// The manual page fetchd(1) in roff (man(7) macros): the commands and their own flags walked
// from `cli`, then every option of the table with its flag, environment variable, TOML key,
// bounds and default, the files and the exit status. Deterministic (no date), so that the
// committed docs/fetchd.1 can be compared with it.
std::string man_page(const CLI::App& cli);

// The OPTIONS and ENVIRONMENT sections of man_page: the option table's part, which `cli` only
// lends the value names to (`--listen HOST:PORT`). `cli` must hold add_config_options' flags.
std::string man_options(const CLI::App& cli);

// Completion scripts for the subcommands of `cli` and their flags: the options of the root app
// are offered after any subcommand (it falls through), enum values (`--log-level`) and files
// (`--config`) are completed as values. Both are sourced as they are: bash registers
// `complete -F _fetchd fetchd`; zsh works from $fpath (as _fetchd) or when sourced.
std::string bash_completion(const CLI::App& cli);
std::string zsh_completion(const CLI::App& cli);

}  // namespace fetchd
