// The HTTP/1.1 server: Boost.Beast on Asio with C++20 coroutines, one event loop per thread.
// It owns sockets, limits and timeouts, request ids and the access log; what a request means
// is the Handler's business. Beast stays inside http_server.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <spdlog/logger.h>

#include "api/http.hpp"
#include "core/error.hpp"

namespace fetchd::api {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;  // 0: a free port, see HttpServer::port()
  unsigned threads = 2;
  std::uint64_t max_body_bytes = 1024 * 1024;  // over it: 413
  std::uint64_t max_header_bytes = 16 * 1024;  // over it: 431
  std::uint64_t max_connections = 10000;       // over it: new connections are closed at once
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
  unsigned blocking_threads = 2;  // runs Handler::is_blocking requests
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Handler& handler, std::shared_ptr<spdlog::logger> log);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts the threads. kUnavailable when the address cannot be bound.
  Result<void> start();
  std::uint16_t port() const;  // the bound port, after start()
  // Graceful stop: stop accepting, let in-flight requests finish (up to `grace`), close idle
  // keep-alive connections, join the threads. Safe to call from any thread, and twice.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(10'000));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fetchd::api
