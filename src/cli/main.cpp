// fetchd's command line: parses the subcommands and the options of the option table, resolves
// the configuration (flags > env > file > defaults) and hands over to app/.
#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <map>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "app/app.hpp"
#include "config/cli_options.hpp"
#include "config/docs.hpp"
#include "config/loader.hpp"
#include "config/logging.hpp"

namespace {

constexpr int kUsageError = 2;

// Reads a password: one line from stdin when it is not a terminal (scripts), else a prompt
// without echo, asked twice.
std::optional<std::string> read_password() {
  if (!isatty(STDIN_FILENO)) {
    std::string line;
    if (!std::getline(std::cin, line)) return std::nullopt;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  termios saved{};
  tcgetattr(STDIN_FILENO, &saved);
  termios quiet = saved;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  auto ask = [&](const char* prompt) -> std::optional<std::string> {
    std::cerr << prompt << std::flush;
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    std::string line;
    const bool ok = static_cast<bool>(std::getline(std::cin, line));
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::cerr << "\n";
    if (!ok) return std::nullopt;
    return line;
  };
  auto first = ask("Password: ");
  if (!first) return std::nullopt;
  auto second = ask("Repeat password: ");
  if (!second || *second != *first) {
    std::cerr << "fetchd: the passwords differ\n";
    return std::nullopt;
  }
  return first;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"fetchd runs HTTP fetch tasks on schedules and keeps what they bring back.",
               "fetchd"};
  cli.set_version_flag("--version", "fetchd " FETCHD_VERSION);
  cli.require_subcommand(1);
  cli.fallthrough();  // options of the table are accepted after any subcommand

  std::map<std::string, std::string> flags;
  std::optional<std::string> config_file;
  fetchd::add_config_options(cli, flags, config_file);
  const std::string options_footer =
      "Every configuration option of `fetchd --help` (--listen, --db, ...) is accepted after "
      "the subcommand too.";

  fetchd::app::ServeOptions serve_options;
  auto* serve = cli.add_subcommand(
      "serve", "Run everything in one process: API, scheduler and workers (embedded mode).");
  bool no_migrate = false;
  serve->footer(options_footer);
  serve->add_flag("--no-migrate", no_migrate, "Do not apply pending schema migrations on start.");

  // The scale-out roles: the same process as serve, playing one part.
  auto add_role = [&](const char* name, const char* about) {
    auto* role = cli.add_subcommand(name, about);
    role->footer(options_footer +
                 " Needs --broker redis://HOST:PORT/DB (and a database every "
                 "process reaches, e.g. --db postgres://...).");
    role->add_flag("--no-migrate", no_migrate, "Do not apply pending schema migrations on start.");
    return role;
  };
  auto* api_role = add_role("api", "Scale-out: the REST API only (stateless; run any number).");
  auto* scheduler_role =
      add_role("scheduler",
               "Scale-out: the scheduler; one leads at a time, the others take over if it dies.");
  auto* worker_role =
      add_role("worker", "Scale-out: a worker, fetching the runs the scheduler enqueues.");
  std::optional<std::size_t> concurrency;
  worker_role
      ->add_option("--concurrency", concurrency,
                   "Most fetches in flight at once in this worker (same as --fetch-concurrency).")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000}));

  auto* db = cli.add_subcommand("db", "Database schema commands.");
  db->footer(options_footer);
  db->require_subcommand(1);
  auto* db_init = db->add_subcommand("init", "Create the schema (idempotent).");
  auto* db_migrate = db->add_subcommand("migrate", "Apply pending migrations (idempotent).");
  fetchd::app::SeedOptions seed_options;
  auto* db_seed = db->add_subcommand("seed", "Add demo tasks like the original service's seed.");
  db_seed->add_option("--count", seed_options.count, "How many tasks to add.")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}));
  db_seed->add_option("--base-url", seed_options.base_url,
                      "URL the tasks fetch (their eventfile is appended). Default: this "
                      "server's own demo feeds, http://<listen>/demo/.");
  db_seed
      ->add_option("--owner", seed_options.owner,
                   "User owning the tasks; created with a random password if missing.")
      ->capture_default_str();

  auto* feed =
      cli.add_subcommand("feed",
                         "One scheduling pass: run every task due now to completion, then exit "
                         "(exit code 1 if any run failed).");
  feed->footer(options_footer);

  auto* user = cli.add_subcommand("user", "User accounts.");
  user->footer(options_footer);
  user->require_subcommand(1);
  auto* user_add = user->add_subcommand(
      "add", "Create a user; the password is read from stdin, or asked for on a terminal.");
  std::string user_name;
  bool user_admin = false;
  user_add->add_option("NAME", user_name, "User name")->required();
  user_add->add_flag("--admin", user_admin, "Make the user an admin (sees every user's tasks).");

  auto* config_cmd = cli.add_subcommand(
      "config", "Print documentation generated from the option table (make docs uses it).");
  config_cmd->require_subcommand(1);
  auto* config_example =
      config_cmd->add_subcommand("example", "A commented TOML file of every option.");
  auto* config_table =
      config_cmd->add_subcommand("table", "The README's configuration table (Markdown).");
  auto* config_man =
      config_cmd->add_subcommand("man", "The manual page fetchd(1) (roff; docs/fetchd.1).");

  auto* completion = cli.add_subcommand(
      "completion", "Print a shell completion script (source it, or install it; see fetchd(1)).");
  completion->require_subcommand(1);
  auto* completion_bash = completion->add_subcommand(
      "bash", "For bash: /usr/share/bash-completion/completions/fetchd.");
  auto* completion_zsh =
      completion->add_subcommand("zsh", "For zsh: _fetchd in a directory of $fpath.");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return cli.exit(e);  // --help, --version
    std::cerr << "fetchd: " << e.what() << " (see fetchd --help)\n";
    return kUsageError;
  }

  if (config_example->parsed()) {
    std::cout << fetchd::example_toml();
    return 0;
  }
  if (config_table->parsed()) {
    std::cout << fetchd::markdown_table();
    return 0;
  }
  // Generated from `cli` itself, so that they list every subcommand and flag defined above.
  if (config_man->parsed()) {
    std::cout << fetchd::man_page(cli);
    return 0;
  }
  if (completion_bash->parsed()) {
    std::cout << fetchd::bash_completion(cli);
    return 0;
  }
  if (completion_zsh->parsed()) {
    std::cout << fetchd::zsh_completion(cli);
    return 0;
  }

  if (concurrency) flags["fetch.concurrency"] = std::to_string(*concurrency);
  auto config = fetchd::load_config({.flags = flags, .config_file = config_file});
  if (!config) {
    std::cerr << "fetchd: " << config.error().message << "\n";
    return kUsageError;
  }

  for (auto* role : {serve, api_role, scheduler_role, worker_role}) {
    if (!role->parsed()) continue;
    auto log = fetchd::make_logger(*config);
    if (!log) {
      std::cerr << "fetchd: " << log.error().message << "\n";
      return kUsageError;
    }
    serve_options.migrate = !no_migrate;
    serve_options.command = role->get_name();
    if (role != serve) {
      serve_options.api = role == api_role;
      serve_options.scheduler = role == scheduler_role;
      serve_options.workers = role == worker_role;
    }
    return fetchd::app::serve(*config, serve_options, *log);
  }
  if (feed->parsed()) {
    auto log = fetchd::make_logger(*config);
    if (!log) {
      std::cerr << "fetchd: " << log.error().message << "\n";
      return kUsageError;
    }
    return fetchd::app::feed(*config, *log, std::cout, std::cerr);
  }
  if (db_seed->parsed()) {
    seed_options.progress = seed_options.count >= 1000 && isatty(STDERR_FILENO);
    return fetchd::app::seed(*config, seed_options, std::cout, std::cerr);
  }
  if (db_init->parsed() || db_migrate->parsed())
    return fetchd::app::migrate(*config, std::cout, std::cerr);
  if (user_add->parsed()) {
    auto password = read_password();
    if (!password) {
      std::cerr << "fetchd: no password given\n";
      return kUsageError;
    }
    return fetchd::app::add_user(*config, user_name, *password, user_admin, std::cout, std::cerr);
  }
  return kUsageError;
}
