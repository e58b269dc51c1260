#include "app/app.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <ostream>
#include <thread>

#include "api/http_server.hpp"
#include "api/rest_api.hpp"
#include "auth/auth_service.hpp"
#include "config/options.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace fetchd::app {

namespace {

std::string url_host(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

Result<std::unique_ptr<Store>> open_migrated(const Config& config, bool migrate,
                                             spdlog::logger& log) {
  auto store = open_store(config.db);
  if (!store) return store;
  if (migrate) {
    auto applied = (*store)->migrate();
    if (!applied) return tl::unexpected(applied.error());
    for (const auto& name : *applied) log.info("applied migration {}", name);
  }
  return store;
}

}  // namespace

Result<std::unique_ptr<Store>> open_store(const std::string& db_url) {
  if (auto path = sqlite_path_from_url(db_url)) return open_sqlite_store(*path);
  return fail(ErrorCode::kInvalid, "unsupported database URL \"" + db_url +
                                       "\": expected sqlite://PATH (postgres:// is not built yet)");
}

int serve(const Config& config, const ServeOptions& options, std::shared_ptr<spdlog::logger> log) {
  // Block the stop signals in every thread we start, and wait for them here.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto store = open_migrated(config, options.migrate, *log);
  if (!store) {
    log->error("cannot open the database {}: {} {}", config.db, store.error().message,
               store.error().internal);
    return 1;
  }
  SystemClock clock;
  auth::AuthService auth(**store, clock, {config.auth_token_ttl, config.auth_open_registration});
  api::RestApi api(**store, auth, clock, log);

  const auto listen = parse_listen(config.listen).value();  // validated by the loader
  api::HttpServerOptions http;
  http.host = listen.host;
  http.port = listen.port;
  http.threads = config.http_threads != 0 ? config.http_threads
                                          : std::max(2u, std::thread::hardware_concurrency());
  http.max_body_bytes = config.http_max_body_bytes;
  http.max_header_bytes = config.http_max_header_bytes;
  http.max_connections = config.http_max_connections;
  http.header_timeout = config.http_header_timeout;
  http.body_timeout = config.http_body_timeout;
  http.idle_timeout = config.http_idle_timeout;
  api::HttpServer server(http, api, log);
  if (auto started = server.start(); !started) {
    log->error("cannot listen on {}: {}", config.listen, started.error().message);
    return 1;
  }
  log->info("listening on http://{}:{} (database {})", url_host(listen.host), server.port(),
            config.db);

  int signal = 0;
  sigwait(&stop_signals, &signal);
  log->info("received {}, stopping", signal == SIGTERM ? "SIGTERM" : "SIGINT");
  server.stop();
  log->info("stopped");
  return 0;
}

int migrate(const Config& config, std::ostream& out, std::ostream& err) {
  auto store = open_store(config.db);
  if (!store) {
    err << "fetchd: cannot open the database " << config.db << ": " << store.error().message
        << "\n";
    return 1;
  }
  auto applied = (*store)->migrate();
  if (!applied) {
    err << "fetchd: migration failed: " << applied.error().message << " "
        << applied.error().internal << "\n";
    return 1;
  }
  for (const auto& name : *applied) out << "applied " << name << "\n";
  if (applied->empty()) out << "schema is up to date\n";
  return 0;
}

int add_user(const Config& config, const std::string& name, const std::string& password, bool admin,
             std::ostream& out, std::ostream& err) {
  auto store = open_store(config.db);
  if (!store) {
    err << "fetchd: cannot open the database " << config.db << ": " << store.error().message
        << "\n";
    return 1;
  }
  if (auto applied = (*store)->migrate(); !applied) {
    err << "fetchd: migration failed: " << applied.error().message << "\n";
    return 1;
  }
  SystemClock clock;
  auth::AuthService auth(**store, clock, {config.auth_token_ttl, true});
  auto user = auth.register_user(name, password, admin ? Role::kAdmin : Role::kUser, true);
  if (!user) {
    err << "fetchd: cannot add user " << name << ": " << user.error().message;
    for (const auto& f : user.error().fields) err << "; " << f.field << ": " << f.message;
    err << "\n";
    return 1;
  }
  out << "added " << to_string(user->role) << " " << user->username << " (id " << user->id << ")\n";
  return 0;
}

}  // namespace fetchd::app
