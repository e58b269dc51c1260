// Resolves the Config from its sources, strongest first: command-line flags, FETCHD_*
// environment variables, the TOML file (--config or FETCHD_CONFIG), the option table's
// defaults. Every bad input is one line naming the option and where the value came from.
#pragma once

#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "core/error.hpp"

namespace fetchd {

struct ConfigSources {
  // Option name ("auth.token_ttl") -> raw value, only for the options given on the command line.
  std::map<std::string, std::string> flags;
  // --config FILE; when absent the environment's FETCHD_CONFIG is used, if set.
  std::optional<std::string> config_file;
  // The environment, replaceable so that tests need not touch the process's.
  std::function<const char*(const char*)> getenv = ::getenv;
};

// kInvalid with a one-line message on a bad value, an unknown key in the file, a TOML syntax
// error (file, line and column), a wrong TOML type, or a config file that cannot be read.
Result<Config> load_config(const ConfigSources& sources);

}  // namespace fetchd
