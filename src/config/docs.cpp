// example_toml and markdown_table walk option_table(), one row per option; man_page and the
// completion scripts walk the CLI11 app as well, so that a new subcommand or flag needs no
// edit here.
#include "config/docs.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
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

// ---- man page and completions: the command line as CLI11 holds it

// A command a user runs: a subcommand without subcommands of its own ("db seed").
struct Command {
  std::string words;
  const CLI::App* app;
};

std::vector<const CLI::App*> subcommands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* sub) { return !sub->get_name().empty(); });
}

void collect_commands(const CLI::App& app, const std::string& words, std::vector<Command>& out) {
  auto subs = subcommands(app);
  if (subs.empty() && !words.empty()) out.push_back({words, &app});
  for (const CLI::App* sub : subs) {
    collect_commands(*sub, words.empty() ? sub->get_name() : words + " " + sub->get_name(), out);
  }
}

// Every app of the tree with the words leading to it ("" for the root), parents first.
void collect_paths(const CLI::App& app, const std::string& words, std::vector<Command>& out) {
  out.push_back({words, &app});
  for (const CLI::App* sub : subcommands(app)) {
    collect_paths(*sub, words.empty() ? sub->get_name() : words + " " + sub->get_name(), out);
  }
}

// The visible options of `app` (CLI11 hides those without a group).
std::vector<const CLI::Option*> visible_options(const CLI::App& app) {
  return app.get_options([](const CLI::Option* o) { return !o->get_group().empty(); });
}

bool takes_value(const CLI::Option& o) {
  return o.get_expected_min() > 0;
}

// Every name of the option: "-h", "--help".
std::vector<std::string> option_names(const CLI::Option& o) {
  std::vector<std::string> out;
  for (const auto& s : o.get_snames()) out.push_back("-" + s);
  for (const auto& l : o.get_lnames()) out.push_back("--" + l);
  return out;
}

// "UINT" (CLI11 appends its validators' text: "UINT:UINT in [1 - 100000]").
std::string value_name(const CLI::Option& o) {
  std::string name = o.get_type_name();
  if (auto colon = name.find(':');
      colon != std::string::npos && name.find(' ', colon) != std::string::npos) {
    name.resize(colon);
  }
  return name.empty() ? "VALUE" : name;
}

// "trace|debug|info" (an enum option's value name) -> its choices; empty for other options.
std::vector<std::string> choices(const CLI::Option& o) {
  std::vector<std::string> out;
  const std::string type_name = value_name(o);
  std::string_view name = type_name;
  if (name.find('|') == std::string_view::npos) return out;
  while (true) {
    auto bar = name.find('|');
    out.emplace_back(name.substr(0, bar));
    if (bar == std::string_view::npos) break;
    name.remove_prefix(bar + 1);
  }
  return out;
}

// The first sentence of a help text, without the "(env FETCHD_...)" that
// add_config_options appends: what a completion menu has room for.
std::string short_help(std::string_view help) {
  if (auto env = help.find(" (env "); env != std::string_view::npos) help = help.substr(0, env);
  if (auto stop = help.find(". "); stop != std::string_view::npos) help = help.substr(0, stop);
  if (help.ends_with('.')) help.remove_suffix(1);
  return std::string(help);
}

// Roff text: backslashes and minus signs escaped (flags stay copy-pasteable), Markdown's
// backquotes dropped, and a line that would start with a control character made literal.
std::string roff(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '`') continue;  // Markdown code quotes of the help texts
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out.front() == '.' || out.front() == '\'')) out.insert(0, "\\&");
  return out;
}

std::string roff_bold(std::string_view text) {
  return "\\fB" + roff(text) + "\\fR";
}
std::string roff_italic(std::string_view text) {
  return "\\fI" + roff(text) + "\\fR";
}

// "\fB\-\-count\fR \fIUINT\fR", "\fB\-h\fR, \fB\-\-help\fR", "\fINAME\fR".
std::string roff_option(const CLI::Option& o) {
  if (!o.nonpositional()) return roff_italic(o.get_name(true));
  std::string out;
  for (const auto& name : option_names(o)) {
    if (!out.empty()) out += ", ";
    out += roff_bold(name);
  }
  if (takes_value(o)) out += " " + roff_italic(value_name(o));
  return out;
}

std::string option_help(const CLI::Option& o) {
  std::string help = o.get_description();
  if (!help.empty() && !help.ends_with('.')) help += '.';
  if (!o.get_default_str().empty()) help += " Default: " + o.get_default_str() + ".";
  return help;
}

// Single-quoted for a shell: 'it'\''s'.
std::string shell_quote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// The flags taking a value anywhere in the tree ("--config|--listen|..."), and the enum ones
// with their choices, for the completers' value handling.
struct ValueFlags {
  std::vector<std::string> names;
  std::vector<std::pair<std::string, std::vector<std::string>>> choices;
};

ValueFlags value_flags(const std::vector<Command>& paths) {
  ValueFlags out;
  for (const auto& path : paths) {
    for (const CLI::Option* o : visible_options(*path.app)) {
      if (!o->nonpositional() || !takes_value(*o)) continue;
      for (const auto& name : option_names(*o)) {
        if (std::find(out.names.begin(), out.names.end(), name) != out.names.end()) continue;
        out.names.push_back(name);
        if (auto values = choices(*o); !values.empty()) out.choices.emplace_back(name, values);
      }
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

std::vector<std::string> flag_words(const CLI::App& app) {
  std::vector<std::string> out;
  for (const CLI::Option* o : visible_options(app)) {
    if (!o->nonpositional()) continue;
    for (auto& name : option_names(*o)) out.push_back(std::move(name));
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

std::string man_options(const CLI::App& cli) {
  std::string out;
  if (const CLI::Option* config = cli.get_option_no_throw("--config")) {
    out += ".TP\n" + roff_option(*config) + "\n" + roff(option_help(*config)) + "\n";
  }
  for (const auto& spec : option_table()) {
    const std::string flag = flag_name(spec);
    out += ".TP\n" + roff_bold(flag);
    if (spec.type == OptionType::kBool) {
      out += "[=" + roff_italic("BOOL") + "]";
    } else {
      const CLI::Option* option = cli.get_option_no_throw(flag);
      out += " " + roff_italic(option ? value_name(*option) : "VALUE");
    }
    std::string text(spec.help);
    if (auto rule = allowed(spec, ""); !rule.empty()) text += " " + rule;
    out += "\n" + roff(text) +
           " Default: " + (spec.default_value.empty() ? "none" : roff_bold(spec.default_value)) +
           ".\n";
    out += "Environment: " + roff_bold(env_name(spec)) +
           "; configuration file: " + roff_bold(toml_key(spec));
    if (!toml_table(spec).empty())
      out += " in " + roff_bold("[" + std::string(toml_table(spec)) + "]");
    out += ".\n";
  }
  out +=
      ".SH ENVIRONMENT\n"
      ".TP\n\\fBFETCHD_CONFIG\\fR\n"
      "The configuration file, when " +
      roff_bold("--config") + " is not given.\n";
  for (const auto& spec : option_table()) {
    out += ".TP\n" + roff_bold(env_name(spec)) + "\nSee " + roff_bold(flag_name(spec)) + ".\n";
  }
  return out;
}

std::string man_page(const CLI::App& cli) {
  std::string out =
      ".\\\" fetchd(1), generated by `fetchd config man` from the command line (src/cli/main.cpp)\n"
      ".\\\" and the option table (src/config/options.cpp). `make docs` regenerates "
      "docs/fetchd.1;\n"
      ".\\\" a test fails when it is stale. Do not edit by hand.\n"
      ".TH FETCHD 1 \"\" \"fetchd " FETCHD_VERSION
      "\" \"User Commands\"\n"
      ".nh\n"
      ".ad l\n"
      ".SH NAME\n"
      "fetchd \\- run HTTP fetch tasks on schedules and keep what they bring back\n"
      ".SH SYNOPSIS\n"
      "\\fBfetchd\\fR \\fIcommand\\fR [\\fIoptions\\fR]\n"
      ".br\n"
      "\\fBfetchd \\-\\-help\\fR | \\fBfetchd \\-\\-version\\fR\n"
      ".SH DESCRIPTION\n" +
      roff(cli.get_description()) +
      "\n"
      ".PP\n"
      "Users register, log in and create tasks through a REST API: a URL, request parameters, "
      "an active window, an interval, a timeout and a retry budget. fetchd fetches each task on "
      "time, records every run as a job and keeps the JSON it brought back. The API is "
      "described at /openapi.json and browsable at /swagger\\-ui.\n"
      ".PP\n"
      "\\fBfetchd serve\\fR runs everything in one process over an embedded SQLite database. "
      "For more than one machine, \\fBfetchd api\\fR, \\fBfetchd scheduler\\fR and "
      "\\fBfetchd worker\\fR run the roles separately over PostgreSQL and Redis.\n"
      ".PP\n"
      "Every option has one name in three places: a flag (\\fB\\-\\-auth\\-token\\-ttl 12h\\fR), "
      "an environment variable (\\fBFETCHD_AUTH_TOKEN_TTL=12h\\fR) and a key of the TOML file "
      "given with \\fB\\-\\-config\\fR (\\fBtoken_ttl = \"12h\"\\fR in \\fB[auth]\\fR). Flags "
      "win over the environment, which wins over the file, which wins over the defaults. The "
      "options are accepted after any command.\n"
      ".SH COMMANDS\n";
  std::vector<Command> commands;
  collect_commands(cli, "", commands);
  for (const auto& command : commands) {
    std::vector<const CLI::Option*> own;
    for (const CLI::Option* o : visible_options(*command.app)) {
      if (o != command.app->get_help_ptr()) own.push_back(o);
    }
    out += ".TP\n" + roff_bold(cli.get_name() + " " + command.words);
    for (const CLI::Option* o : own) {
      out += " ";
      out += o->nonpositional() ? "[" + roff_option(*o) + "]" : roff_option(*o);
    }
    out += "\n" + roff(command.app->get_description()) + "\n";
    if (own.empty()) continue;
    out += ".RS\n";
    for (const CLI::Option* o : own)
      out += ".TP\n" + roff_option(*o) + "\n" + roff(option_help(*o)) + "\n";
    out += ".RE\n";
  }
  out += ".SH OPTIONS\n";
  for (const CLI::Option* o : {cli.get_help_ptr(), cli.get_version_ptr()}) {
    if (o) out += ".TP\n" + roff_option(*o) + "\n" + roff(option_help(*o)) + "\n";
  }
  out += man_options(cli);
  out +=
      ".SH FILES\n"
      ".TP\n\\fI/etc/fetchd/fetchd.toml\\fR\n"
      "The configuration file of the systemd units (\\fBFETCHD_CONFIG\\fR). As installed, every "
      "line is commented out: it documents every option and changes nothing.\n"
      ".TP\n\\fI/etc/default/fetchd\\fR\n"
      "\\fBFETCHD_*\\fR variables for the systemd units (\\fBFETCHD_DB\\fR, "
      "\\fBFETCHD_BROKER\\fR, ...); they win over the configuration file.\n"
      ".TP\n\\fI/var/lib/fetchd\\fR\n"
      "The state directory and working directory of \\fBfetchd.service\\fR: the default "
      "database \\fBsqlite://./fetchd.db\\fR is \\fI/var/lib/fetchd/fetchd.db\\fR.\n"
      ".TP\n\\fI/usr/share/doc/fetchd/examples/fetchd.example.toml\\fR\n"
      "Every option with its help and default, commented out.\n"
      ".SH EXIT STATUS\n"
      ".TP\n0\nSuccess; for the services, a stop on SIGTERM or SIGINT once runs in flight "
      "finished or \\fBshutdown_grace\\fR passed.\n"
      ".TP\n1\nA failure at run time: the database or broker unusable at start, a command that "
      "failed, or \\fBfetchd feed\\fR when a run failed.\n"
      ".TP\n2\nA bad command line or configuration value (one line on stderr names the option "
      "and its source).\n"
      ".SH EXAMPLES\n"
      ".nf\n"
      "fetchd serve \\-\\-listen 0.0.0.0:8000 \\-\\-db sqlite:///var/lib/fetchd/fetchd.db\n"
      "echo 'a long admin password' | fetchd user add root \\-\\-admin\n"
      "FETCHD_DB=postgres://fetchd@db/fetchd FETCHD_BROKER=redis://redis:6379/0 \\e\n"
      "    fetchd worker \\-\\-listen 127.0.0.1:9101 \\-\\-concurrency 256\n"
      "fetchd completion bash > /etc/bash_completion.d/fetchd\n"
      ".fi\n"
      ".SH SEE ALSO\n"
      "\\fBsystemd.exec\\fR(5), \\fBsystemd\\-sysusers\\fR(8); "
      "\\fI/usr/share/doc/fetchd/\\fR (install.md, scale\\-out.md) and "
      "https://github.com/fetchd/fetchd.\n";
  return out;
}

std::string bash_completion(const CLI::App& cli) {
  const std::string fn = "_" + cli.get_name();
  std::vector<Command> paths;
  collect_paths(cli, "", paths);
  const ValueFlags values = value_flags(paths);

  std::string out = "# bash completion for " + cli.get_name() + ", generated by `" +
                    cli.get_name() +
                    " completion bash` from its command line.\n"
                    "# Installed as /usr/share/bash-completion/completions/" +
                    cli.get_name() + "; or: source <(" + cli.get_name() + " completion bash)\n\n";
  out += "# The subcommands after the words \"$1\" (\"\" for none, \"db\", ...).\n";
  out += fn + "_commands() {\n  case \"$1\" in\n";
  for (const auto& path : paths) {
    std::vector<std::string> names;
    for (const CLI::App* sub : subcommands(*path.app)) names.push_back(sub->get_name());
    if (!names.empty())
      out += "    " + shell_quote(path.words) + ") echo " + shell_quote(join(names, " ")) + " ;;\n";
  }
  out += "  esac\n}\n\n";
  out += "# The flags of the command \"$1\" itself (the root's are accepted after any command).\n";
  out += fn + "_flags() {\n  case \"$1\" in\n";
  for (const auto& path : paths) {
    out += "    " + shell_quote(path.words) + ") echo " +
           shell_quote(join(flag_words(*path.app), " ")) + " ;;\n";
  }
  out += "  esac\n}\n\n";
  out += "# Whether the flag \"$1\" takes the next word as its value.\n";
  out += fn + "_takes_value() {\n  case \"$1\" in\n    " + join(values.names, "|") +
         ") return 0 ;;\n  esac\n  return 1\n}\n\n";
  out += "# The values of the flag \"$1\", when they are a fixed set.\n";
  out += fn + "_choices() {\n  case \"$1\" in\n";
  for (const auto& [name, list] : values.choices) {
    out += "    " + name + ") echo " + shell_quote(join(list, " ")) + " ;;\n";
  }
  out += "  esac\n}\n\n";
  out += fn +
         "() {\n"
         "  local cur=${COMP_WORDS[COMP_CWORD]} prev='' command='' word sub i\n"
         "  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
         "  # The command so far: the words naming subcommands, skipping flags and their values.\n"
         "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
         "    word=${COMP_WORDS[i]}\n"
         "    if [[ $word == -* ]]; then\n"
         "      if [[ $word != *=* ]] && " +
         fn +
         "_takes_value \"$word\"; then i=$((i + 1)); fi\n"
         "      continue\n"
         "    fi\n"
         "    for sub in $(" +
         fn +
         "_commands \"$command\"); do\n"
         "      if [[ $word == \"$sub\" ]]; then\n"
         "        command=${command:+$command }$sub\n"
         "        break\n"
         "      fi\n"
         "    done\n"
         "  done\n"
         "  if [[ $prev == -* && $prev != *=* ]] && " +
         fn +
         "_takes_value \"$prev\"; then\n"
         "    if [[ $prev == --config ]]; then\n"
         "      mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
         "    else\n"
         "      mapfile -t COMPREPLY < <(compgen -W \"$(" +
         fn +
         "_choices \"$prev\")\" -- \"$cur\")\n"
         "    fi\n"
         "    return 0\n"
         "  fi\n"
         "  if [[ $cur == -* ]]; then\n"
         "    local flags\n"
         "    flags=\"$(" +
         fn +
         "_flags \"$command\")\"\n"
         "    [[ -n $command ]] && flags+=\" $(" +
         fn +
         "_flags '')\"\n"
         "    mapfile -t COMPREPLY < <(compgen -W \"$flags\" -- \"$cur\")\n"
         "  else\n"
         "    mapfile -t COMPREPLY < <(compgen -W \"$(" +
         fn +
         "_commands \"$command\")\" -- \"$cur\")\n"
         "  fi\n"
         "  return 0\n"
         "}\n\n"
         "complete -F " +
         fn + " " + cli.get_name() + "\n";
  return out;
}

std::string zsh_completion(const CLI::App& cli) {
  const std::string fn = "_" + cli.get_name();
  std::vector<Command> paths;
  collect_paths(cli, "", paths);
  const ValueFlags values = value_flags(paths);

  std::string out = "#compdef " + cli.get_name() +
                    "\n"
                    "# zsh completion for " +
                    cli.get_name() + ", generated by `" + cli.get_name() +
                    " completion zsh` from its command line.\n"
                    "# Installed as /usr/share/zsh/vendor-completions/" +
                    fn + " (any directory of $fpath);\n# or, after compinit: source <(" +
                    cli.get_name() + " completion zsh)\n\n";
  out += "# reply: the subcommands after the words $1 (\"\" for none), as name:description.\n";
  out += fn + "_commands() {\n  case $1 in\n";
  for (const auto& path : paths) {
    std::vector<std::string> items;
    for (const CLI::App* sub : subcommands(*path.app)) {
      items.push_back(shell_quote(sub->get_name() + ":" + short_help(sub->get_description())));
    }
    if (!items.empty())
      out += "    (" + shell_quote(path.words) + ") reply=(" + join(items, " ") + ") ;;\n";
  }
  out += "    (*) reply=() ;;\n  esac\n}\n\n";
  out += "# reply: the flags of the command $1 itself, as name:description.\n";
  out += fn + "_flags() {\n  case $1 in\n";
  for (const auto& path : paths) {
    std::vector<std::string> items;
    for (const CLI::Option* o : visible_options(*path.app)) {
      if (!o->nonpositional()) continue;
      for (const auto& name : option_names(*o)) {
        items.push_back(shell_quote(name + ":" + short_help(o->get_description())));
      }
    }
    out += "    (" + shell_quote(path.words) + ") reply=(" + join(items, " ") + ") ;;\n";
  }
  out += "    (*) reply=() ;;\n  esac\n}\n\n";
  out += fn + "_takes_value() {\n  case $1 in\n    (" + join(values.names, "|") +
         ") return 0 ;;\n  esac\n  return 1\n}\n\n";
  out += fn + "_choices() {\n  case $1 in\n";
  for (const auto& [name, list] : values.choices) {
    out += "    (" + name + ") reply=(" + join(list, " ") + ") ;;\n";
  }
  out += "    (*) reply=() ;;\n  esac\n}\n\n";
  out += fn +
         "() {\n"
         "  local command='' word sub prev i\n"
         "  local -a reply items\n"
         "  for (( i = 2; i < CURRENT; i++ )); do\n"
         "    word=${words[i]}\n"
         "    if [[ $word == -* ]]; then\n"
         "      if [[ $word != *=* ]] && " +
         fn +
         "_takes_value $word; then (( i++ )); fi\n"
         "      continue\n"
         "    fi\n"
         "    " +
         fn +
         "_commands \"$command\"\n"
         "    for sub in ${reply%%:*}; do\n"
         "      if [[ $word == $sub ]]; then\n"
         "        command=${command:+$command }$sub\n"
         "        break\n"
         "      fi\n"
         "    done\n"
         "  done\n"
         "  prev=${words[CURRENT-1]}\n"
         "  if [[ $prev == -* && $prev != *=* ]] && " +
         fn +
         "_takes_value $prev; then\n"
         "    if [[ $prev == --config ]]; then\n"
         "      _files\n"
         "    else\n"
         "      " +
         fn +
         "_choices $prev\n"
         "      if (( ${#reply} )); then compadd -a reply; else _message \"value of $prev\"; fi\n"
         "    fi\n"
         "    return\n"
         "  fi\n"
         "  if [[ $PREFIX == -* ]]; then\n"
         "    " +
         fn +
         "_flags \"$command\"\n"
         "    items=($reply)\n"
         "    if [[ -n $command ]]; then " +
         fn +
         "_flags ''; items+=($reply); fi\n"
         "    _describe -t options option items\n"
         "  else\n"
         "    " +
         fn +
         "_commands \"$command\"\n"
         "    items=($reply)\n"
         "    (( ${#items} )) && _describe -t commands command items\n"
         "  fi\n"
         "}\n\n"
         "if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then\n"
         "  " +
         fn +
         " \"$@\"\n"
         "else\n"
         "  compdef " +
         fn + " " + cli.get_name() +
         "\n"
         "fi\n";
  return out;
}

}  // namespace fetchd
