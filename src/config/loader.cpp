// load_config: layers defaults, the TOML file, the environment and the flags onto one Config.
// toml++ throws on syntax errors; its exceptions stop here.
#include "config/loader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "config/options.hpp"

namespace fetchd {

namespace {

tl::unexpected<Error> invalid(std::string message) {
  return fail(ErrorCode::kInvalid, std::move(message));
}

// A raw value as shown in an error: quoted, control characters escaped so the message stays
// on one line, long values cut.
std::string quote(std::string_view raw) {
  constexpr std::size_t kMaxShown = 80;
  std::string out = "\"";
  for (std::size_t i = 0; i < raw.size() && i < kMaxShown; ++i) {
    auto c = static_cast<unsigned char>(raw[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (raw.size() > kMaxShown) out += "...";
  return out + "\"";
}

Result<void> apply(Config& config, const OptionSpec& spec, std::string_view raw,
                   const std::string& origin) {
  auto ok = set_option(config, spec, raw);
  if (ok || ok.error().code != ErrorCode::kInvalid) return ok;
  return invalid("invalid value " + quote(raw) + " for " + std::string(spec.name) + " (from " +
                 origin + "): " + ok.error().message);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string suggestion(std::string_view name) {
  const OptionSpec* best = nullptr;
  std::size_t best_distance = 3;  // beyond two edits it is no longer a typo
  for (const auto& spec : option_table()) {
    std::size_t d = edit_distance(name, spec.name);
    if (d < best_distance) {
      best = &spec;
      best_distance = d;
    }
  }
  return best ? "; did you mean " + std::string(best->name) + "?" : std::string();
}

bool is_section(std::string_view key) {
  for (const auto& spec : option_table()) {
    if (toml_table(spec) == key) return true;
  }
  return false;
}

std::string_view toml_type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    default:
      return "a date or time";
  }
}

std::string_view toml_expected(const OptionSpec& spec) {
  switch (spec.type) {
    case OptionType::kBool:
      return "a boolean (true or false)";
    case OptionType::kInt:
      return "an integer";
    case OptionType::kDuration:
      return "a string like \"30s\" or an integer number of seconds";
    case OptionType::kBytes:
      return "a string like \"1MiB\" or an integer number of bytes";
    default:
      return "a string";
  }
}

class TomlLayer {
 public:
  TomlLayer(Config& config, std::string path) : config_(config), path_(std::move(path)) {}

  Result<void> apply_table(const toml::table& root) {
    for (auto&& [key, node] : root) {
      std::string_view name = key.str();
      if (node.is_table() && is_section(name)) {
        for (auto&& [sub_key, sub_node] : *node.as_table()) {
          std::string dotted = std::string(name) + "." + std::string(sub_key.str());
          if (auto ok = apply_node(dotted, sub_node); !ok) return ok;
        }
      } else if (is_section(name)) {
        return invalid("invalid value for " + std::string(name) + " (from " + where(node) +
                       "): expected a table of options, got " + std::string(toml_type_name(node)));
      } else if (auto ok = apply_node(std::string(name), node); !ok) {
        return ok;
      }
    }
    return {};
  }

 private:
  std::string where(const toml::node& node) const {
    return "config file " + path_ + ", line " + std::to_string(node.source().begin.line);
  }

  Result<void> apply_node(const std::string& name, const toml::node& node) {
    const OptionSpec* spec = find_option(name);
    if (!spec) {
      return invalid("unknown option \"" + name + "\" in config file " + path_ + ", line " +
                     std::to_string(node.source().begin.line) + suggestion(name));
    }
    std::optional<std::string> raw;
    switch (spec->type) {
      case OptionType::kString:
      case OptionType::kEnum:
        if (auto s = node.as_string()) raw = s->get();
        break;
      case OptionType::kBool:
        if (auto b = node.as_boolean()) raw = b->get() ? "true" : "false";
        break;
      case OptionType::kInt:
        if (auto i = node.as_integer()) raw = std::to_string(i->get());
        break;
      case OptionType::kDuration:
      case OptionType::kBytes:
        if (auto s = node.as_string()) raw = s->get();
        if (auto i = node.as_integer()) raw = std::to_string(i->get());
        break;
    }
    if (!raw) {
      return invalid("invalid value for " + name + " (from " + where(node) + "): expected " +
                     std::string(toml_expected(*spec)) + ", got " +
                     std::string(toml_type_name(node)));
    }
    return apply(config_, *spec, *raw, where(node));
  }

  Config& config_;
  std::string path_;
};

Result<std::string> read_file(const std::string& path, const std::string& origin) {
  auto cannot = [&](std::string_view why) {
    return invalid("cannot read config file " + quote(path) + " (from " + origin +
                   "): " + std::string(why));
  };
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) return cannot("no such file");
  if (std::filesystem::is_directory(status)) return cannot("it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return cannot(std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return cannot("read error");
  return std::move(text).str();
}

Result<void> apply_file(Config& config, const std::string& path, const std::string& origin) {
  auto text = read_file(path, origin);
  if (!text) return tl::unexpected(text.error());
  try {
    toml::table root = toml::parse(*text, path);
    return TomlLayer(config, path).apply_table(root);
  } catch (const toml::parse_error& e) {
    std::string description(e.description());
    for (char& c : description) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return invalid("syntax error in config file " + path + " at line " +
                   std::to_string(e.source().begin.line) + ", column " +
                   std::to_string(e.source().begin.column) + ": " + description);
  } catch (const std::exception& e) {
    return fail(ErrorCode::kInternal, "cannot load config file " + path, e.what());
  }
}

}  // namespace

Result<Config> load_config(const ConfigSources& sources) {
  Config config;
  for (const auto& spec : option_table()) {
    if (auto ok = set_option(config, spec, spec.default_value); !ok) {
      return fail(ErrorCode::kInternal, "bad default for " + std::string(spec.name),
                  ok.error().message);
    }
  }

  auto env = [&](const std::string& name) -> const char* {
    return sources.getenv ? sources.getenv(name.c_str()) : nullptr;
  };

  if (sources.config_file) {
    if (auto ok = apply_file(config, *sources.config_file, "flag --config"); !ok) {
      return tl::unexpected(ok.error());
    }
  } else if (const char* path = env("FETCHD_CONFIG")) {
    if (auto ok = apply_file(config, path, "environment FETCHD_CONFIG"); !ok) {
      return tl::unexpected(ok.error());
    }
  }

  for (const auto& spec : option_table()) {
    std::string name = env_name(spec);
    if (const char* raw = env(name)) {
      if (auto ok = apply(config, spec, raw, "environment " + name); !ok) {
        return tl::unexpected(ok.error());
      }
    }
  }

  for (const auto& [name, raw] : sources.flags) {
    const OptionSpec* spec = find_option(name);
    if (!spec) return invalid("unknown option \"" + name + "\" on the command line");
    if (auto ok = apply(config, *spec, raw, "flag " + flag_name(*spec)); !ok) {
      return tl::unexpected(ok.error());
    }
  }
  return config;
}

}  // namespace fetchd
