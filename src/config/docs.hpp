// Documentation generated from the option table, so it cannot drift from the code: the
// commented reference config file (fetchd.example.toml) and the README's configuration table.
// Unit tests compare both committed copies with these functions.
#pragma once

#include <string>

namespace fetchd {

// Every option with its help, flag, environment variable, bounds and default, all commented
// out (Redis's redis.conf style): the file as shipped changes nothing.
std::string example_toml();

// A Markdown table (Option | Flag | Environment | Default | Description), ending in a newline;
// README.md holds it between `<!-- config-table:begin -->` and `<!-- config-table:end -->`.
std::string markdown_table();

}  // namespace fetchd
