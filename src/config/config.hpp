// Resolved configuration: one field per option of the option table (config/options.cpp).
// Values come from flags > environment (FETCHD_*) > TOML file (--config) > defaults.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace fetchd {

struct Config {
  std::string listen = "127.0.0.1:8000";  // host:port; port 0 picks a free one
  std::string db = "sqlite://./fetchd.db";
  std::string log_level = "info";   // trace|debug|info|warn|error|off
  std::string log_format = "text";  // text|json

  std::chrono::seconds auth_token_ttl{24 * 3600};
  bool auth_open_registration = true;
  std::int64_t auth_login_max_failures = 5;
  std::chrono::milliseconds auth_login_window{15 * 60 * 1000};

  std::uint64_t http_max_body_bytes = 1024 * 1024;
  std::uint64_t http_max_header_bytes = 16 * 1024;
  std::uint64_t http_max_connections = 10000;
  std::chrono::milliseconds http_header_timeout{10'000};  // to receive a request's headers
  std::chrono::milliseconds http_body_timeout{30'000};    // to receive its body
  std::chrono::milliseconds http_idle_timeout{60'000};    // keep-alive between requests
  unsigned http_threads = 0;                              // 0: one per core

  std::string broker = "local";  // local | redis://host:port/db
  std::int64_t broker_max_deliveries = 5;
  std::chrono::milliseconds scheduler_lease_ttl{5'000};

  bool fetch_allow_private = false;
  std::string fetch_allow_cidrs;  // validated by the loader: parse_ip_ranges accepts it
  std::size_t fetch_concurrency = 512;
  std::chrono::milliseconds fetch_default_timeout{30'000};
  std::uint64_t fetch_max_response_bytes = 10 * 1024 * 1024;

  std::int64_t limits_max_tasks_per_user = 10'000;  // 0: no limit
  std::chrono::milliseconds limits_min_interval{1000};
  std::uint64_t limits_max_parameters_bytes = 64 * 1024;

  std::int64_t retention_jobs_per_task = 1000;
  std::chrono::milliseconds retention_max_age{30LL * 24 * 3600 * 1000};

  std::chrono::milliseconds worker_lease{30'000};
  std::chrono::milliseconds shutdown_grace{10'000};
  bool demo = true;
};

}  // namespace fetchd
