#include "app/app.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <optional>
#include <ostream>
#include <thread>

#include "api/http_server.hpp"
#include "api/rest_api.hpp"
#include "app/engine.hpp"
#include "app/remote_scheduler.hpp"
#include "auth/auth_service.hpp"
#include "broker/local/local_broker.hpp"
#include "broker/redis/redis_broker.hpp"
#include "broker/redis/redis_coordinator.hpp"
#include "config/options.hpp"
#include "core/address_guard.hpp"
#include "core/schedule.hpp"
#include "store/postgres/postgres_store.hpp"
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
  if (is_postgres_url(db_url)) return open_postgres_store(db_url);
  return fail(ErrorCode::kInvalid,
              "unsupported database URL \"" + db_url +
                  "\": expected sqlite://PATH or postgres://USER@HOST:PORT/DB");
}

Result<std::unique_ptr<Broker>> open_broker(const Config& config, const Clock& clock,
                                            std::shared_ptr<spdlog::logger> log) {
  if (config.broker == "local") return std::make_unique<LocalBroker>(clock);
  RedisBrokerOptions options;
  options.max_deliveries = config.broker_max_deliveries;
  options.lease = config.worker_lease;
  return open_redis_broker(config.broker, options, std::move(log));
}

int serve(const Config& config, const ServeOptions& options, std::shared_ptr<spdlog::logger> log) {
  const bool shared_broker = config.broker != "local";
  if (!shared_broker && !(options.api && options.scheduler && options.workers)) {
    log->error(
        "fetchd {} needs a broker shared with the other processes: --broker "
        "redis://HOST:PORT/DB (the local broker lives inside one process; use fetchd "
        "serve for that)",
        options.command);
    return 2;
  }
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
  Metrics metrics;  // what GET /metrics renders; the engine counts into it too
  auto open_our_broker = [&]() -> std::unique_ptr<Broker> {
    auto broker = open_broker(config, clock, log);
    if (!broker) {
      log->error("cannot use the broker {}: {}", config.broker, broker.error().message);
      return nullptr;
    }
    return std::move(*broker);
  };
  // Scale-out: the processes agree on a leading scheduler and pass events through Redis.
  std::unique_ptr<Coordinator> coordinator;
  if (shared_broker) {
    auto opened = open_redis_coordinator(config.broker, {}, log);
    if (!opened) {
      log->error("cannot use the broker {}: {}", config.broker, opened.error().message);
      return 1;
    }
    coordinator = std::move(*opened);
  }
  std::optional<Engine> engine;
  if (options.scheduler || options.workers) {
    auto broker = open_our_broker();
    if (!broker) return 1;
    engine.emplace(**store, std::move(broker), config, clock, metrics, log,
                   EngineRoles{options.scheduler, options.workers}, coordinator.get());
  }
  // The API's own broker (manual runs), unfenced, and its way to the leading scheduler.
  std::unique_ptr<Broker> api_broker;
  std::optional<RemoteScheduler> remote;
  TaskChangeListener* listener = nullptr;
  if (options.api && coordinator) {
    api_broker = open_our_broker();
    if (!api_broker) return 1;
    remote.emplace(**store, *api_broker, *coordinator, clock, log);
    listener = &*remote;
  } else if (options.api) {
    listener = &engine->task_listener();
  }
  auth::AuthSettings auth_settings{config.auth_token_ttl, config.auth_open_registration, {}};
  auth_settings.login_throttle.max_failures = static_cast<int>(config.auth_login_max_failures);
  auth_settings.login_throttle.window = config.auth_login_window;
  auth::AuthService auth(**store, clock, auth_settings);
  api::RestApi api(**store, auth, clock, metrics, log, listener, options.api && config.demo,
                   options.api ? api::RestApi::Routes::kAll : api::RestApi::Routes::kSystem);
  api::ApiPolicy policy;
  policy.allow_private = config.fetch_allow_private;
  policy.allowed = parse_ip_ranges(config.fetch_allow_cidrs).value();  // checked by the loader
  policy.max_tasks_per_user = config.limits_max_tasks_per_user;
  policy.min_interval_s =
      std::chrono::duration_cast<std::chrono::seconds>(config.limits_min_interval).count();
  policy.max_parameters_bytes = config.limits_max_parameters_bytes;
  api.set_policy(std::move(policy));
  if (engine) {
    api.add_readiness_check("broker", [&engine] { return engine->ping(); });
  } else if (api_broker) {
    api.add_readiness_check("broker", [&api_broker] { return api_broker->ping(); });
  }

  const auto listen = parse_listen(config.listen).value();  // validated by the loader
  api::HttpServerOptions http;
  http.host = listen.host;
  http.port = listen.port;
  http.threads = config.http_threads != 0 ? config.http_threads
                                          : std::max(2u, std::thread::hardware_concurrency());
  if (!options.api && config.http_threads == 0) http.threads = 1;  // health and metrics only
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
  log->info("fetchd {}: listening on http://{}:{} (database {}, broker {})", options.command,
            url_host(listen.host), server.port(), config.db, config.broker);
  // After the server: tasks that fetch this server's own /demo/ feeds find it listening.
  if (engine) {
    if (auto started = engine->start(); !started) {
      log->error("cannot start the engine: {} {}", started.error().message,
                 started.error().internal);
      server.stop();
      return 1;
    }
  }

  int signal = 0;
  sigwait(&stop_signals, &signal);
  log->info("received {}, stopping", signal == SIGTERM ? "SIGTERM" : "SIGINT");
  server.stop();
  if (engine) engine->stop();
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
  auth::AuthService auth(**store, clock, {config.auth_token_ttl, true, {}});
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

int feed(const Config& config, std::shared_ptr<spdlog::logger> log, std::ostream& out,
         std::ostream& err) {
  auto store = open_migrated(config, true, *log);
  if (!store) {
    err << "fetchd: cannot open the database " << config.db << ": " << store.error().message
        << "\n";
    return 1;
  }
  SystemClock clock;
  Metrics metrics;
  auto broker = open_broker(config, clock, log);
  if (!broker) {
    log->error("cannot use the broker {}: {}", config.broker, broker.error().message);
    return 1;
  }
  Engine engine(**store, std::move(*broker), config, clock, metrics, log);
  const auto summary = engine.feed();
  out << "feed: " << summary.runs << " runs, " << summary.succeeded << " succeeded, "
      << summary.failed << " failed\n";
  return summary.failed == 0 && summary.succeeded == summary.runs ? 0 : 1;
}

namespace {

// The original service's seed: its three event feeds.
constexpr std::array<std::string_view, 3> kSeedFeeds = {
    "amazingexpo2020.json", "salesmeeting2020.json", "ceosummersummit2020.json"};

Result<User> seed_owner(Store& store, const Config& config, const std::string& name,
                        std::ostream& out) {
  if (auto user = store.find_user_by_name(name)) return user;
  SystemClock clock;
  auth::AuthService auth(store, clock, {config.auth_token_ttl, true, {}});
  const std::string password = auth::generate_token().token;
  auto user = auth.register_user(name, password, Role::kUser, true);
  if (user) out << "created user " << name << " with password " << password << "\n";
  return user;
}

}  // namespace

int seed(const Config& config, const SeedOptions& options, std::ostream& out, std::ostream& err) {
  auto store = open_store(config.db);
  if (store) {
    if (auto applied = (*store)->migrate(); !applied) store = tl::unexpected(applied.error());
  }
  if (!store) {
    err << "fetchd: cannot open the database " << config.db << ": " << store.error().message
        << "\n";
    return 1;
  }
  auto owner = seed_owner(**store, config, options.owner, out);
  if (!owner) {
    err << "fetchd: cannot create the owner " << options.owner << ": " << owner.error().message
        << "\n";
    return 1;
  }
  std::string base_url = options.base_url;
  if (base_url.empty()) {
    auto listen = parse_listen(config.listen).value();  // validated by the loader
    if (listen.host == "0.0.0.0" || listen.host == "::") listen.host = "127.0.0.1";
    base_url = "http://" + url_host(listen.host) + ":" + std::to_string(listen.port) + "/demo/";
  }
  SystemClock clock;
  const TimePoint now = clock.now();
  const std::size_t step = std::max<std::size_t>(1, options.count / 100);
  for (std::size_t i = 0; i < options.count; ++i) {
    const auto feed = kSeedFeeds[i % kSeedFeeds.size()];
    TaskSpec spec;
    spec.name = std::string(feed.substr(0, feed.find('.'))) + " #" + std::to_string(i + 1);
    spec.url = base_url;
    spec.parameters = {{"eventfile", feed}, {"token", "demo-token"}, {"apiuser", "demo"}};
    spec.start_time = now - std::chrono::days(10);
    spec.end_time = now + std::chrono::days(10);
    spec.task_interval = 2;
    spec.max_execution_time = 0;
    spec.max_attempt = 3;
    if (auto invalid = validate_task_spec(spec); !invalid.empty()) {
      err << "fetchd: the seed task is invalid: " << invalid.front().field << " "
          << invalid.front().message << " (check --base-url)\n";
      return 1;
    }
    auto task = (*store)->create_task(owner->id, spec, now);
    if (task) {
      auto next = (*store)->set_next_run(task->id, next_run_from(*task, now));
      if (!next) task = tl::unexpected(next.error());
    }
    if (!task) {
      err << "\nfetchd: cannot create task " << i + 1 << ": " << task.error().message << "\n";
      return 1;
    }
    if (options.progress && ((i + 1) % step == 0 || i + 1 == options.count)) {
      const std::size_t pct = (i + 1) * 100 / options.count;
      err << "\r[" << std::string(pct / 5, '#') << std::string(20 - pct / 5, ' ') << "] " << pct
          << "% " << i + 1 << "/" << options.count << std::flush;
    }
  }
  if (options.progress) err << "\n";
  out << "added " << options.count << " tasks for " << owner->username << " fetching " << base_url
      << "\n(a fetchd serve already running on this database schedules them at its next start)\n";
  return 0;
}

}  // namespace fetchd::app
