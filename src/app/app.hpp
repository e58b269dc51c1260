// The composition root: the only place that knows the concrete backends and wires the
// components each command needs from the resolved Config.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <string>

#include <spdlog/logger.h>

#include "broker/broker.hpp"
#include "config/config.hpp"
#include "core/error.hpp"
#include "core/time.hpp"
#include "store/store.hpp"

namespace fetchd::app {

// sqlite://… today; postgres://… arrives with the scale-out issue. kInvalid for other schemes.
Result<std::unique_ptr<Store>> open_store(const std::string& db_url);

// `local` (in-process) or redis://host:port/db (Redis Streams). kInvalid for other values.
Result<std::unique_ptr<Broker>> open_broker(const Config& config, const Clock& clock,
                                            std::shared_ptr<spdlog::logger> log);

struct ServeOptions {
  bool migrate = true;  // apply pending migrations on start (`--no-migrate` turns it off)
  // The roles this process plays: all three for `fetchd serve`, one for `fetchd api`,
  // `fetchd scheduler` and `fetchd worker` (which need a shared broker: redis://).
  std::string command = "serve";
  bool api = true;
  bool scheduler = true;
  bool workers = true;
};

// `fetchd serve|api|scheduler|worker`: the roles of `options` in one process, until SIGTERM or
// SIGINT. Every process listens on `listen`: the API, or only /healthz, /readyz and /metrics.
// Returns the process exit code (2 for a configuration that cannot work).
int serve(const Config& config, const ServeOptions& options, std::shared_ptr<spdlog::logger> log);

// `fetchd db init` / `fetchd db migrate`: apply pending migrations, print what was applied.
int migrate(const Config& config, std::ostream& out, std::ostream& err);

// `fetchd user add NAME [--admin]`, with the password already read.
int add_user(const Config& config, const std::string& name, const std::string& password, bool admin,
             std::ostream& out, std::ostream& err);

// `fetchd feed`: one scheduling pass — every task due now is run to completion in this
// process. Exit code 0 when every run succeeded, 1 otherwise; a one-line summary on `out`.
int feed(const Config& config, std::shared_ptr<spdlog::logger> log, std::ostream& out,
         std::ostream& err);

struct SeedOptions {
  std::size_t count = 10;
  std::string base_url;        // empty: this server's own demo feeds, http://<listen>/demo/
  std::string owner = "demo";  // created (with a random password, printed) when missing
  bool progress = false;       // draw a progress bar on `err`
};

// `fetchd db seed`: adds demo tasks like the original service's seed.
int seed(const Config& config, const SeedOptions& options, std::ostream& out, std::ostream& err);

}  // namespace fetchd::app
