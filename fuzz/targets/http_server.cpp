// Fuzz target: the HTTP request path of the server. One api::HttpServer on 127.0.0.1:0 runs the
// real RestApi over an in-memory SQLite store for the whole process; each input is written as
// is to a new loopback connection, which is then half-closed, and the answer read until the
// server closes. Properties: the server answers or closes within seconds, every answer starts
// with a status line, and no answer is a 5xx but 503 (a 500 means an exception escaped a
// handler, or a handler answered nonsense). Sanitizer reports from the server's threads count
// as crashes too. The server keeps state between inputs (its database, its connections), so
// when a property fails the inputs before the failing one are written too, when
// FUZZ_HISTORY_DIR names a directory (fuzz/run.sh sets it): replaying them in order reproduces
// what one input alone may not.
//
// Requests that hash a password (the routes the server runs on its blocking pool: register,
// login, password changes) are answered 422 by a wrapper without reaching the API: one Argon2id
// hash costs more than a thousand other inputs. Their bodies are covered by the property test
// (tests/integration/test_property.py). Inputs may use two fixed bearer tokens, kUserToken and
// kAdminToken (see the corpus), which are valid whenever an input starts.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include "api/http_server.hpp"
#include "api/problem.hpp"
#include "api/rest_api.hpp"
#include "auth/auth_service.hpp"
#include "core/metrics.hpp"
#include "fuzz_check.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace {

using namespace std::chrono_literals;
namespace api = fetchd::api;

constexpr std::string_view kUserToken = "fuzzUserToken-0123456789abcdefghijklmnopqrs";
constexpr std::string_view kAdminToken = "fuzzAdminToken-0123456789abcdefghijklmnopqr";
// Inputs between two fresh databases: what inputs create (tasks, users) stays bounded.
constexpr unsigned kInputsPerWorld = 5000;
constexpr auto kAnswerTimeout = 10s;  // after the input is sent and half-closed
constexpr std::size_t kMaxAnswerBytes = 32 * 1024 * 1024;

class FixedClock final : public fetchd::Clock {
 public:
  fetchd::TimePoint now() const override { return fetchd::from_unix_ms(1'704'067'200'000); }
};

// The API with its own database, two users (a plain one and an admin) with fixed tokens, and
// a task each.
class World {
 public:
  World() {
    auto opened = fetchd::open_sqlite_store(":memory:");
    if (!opened) throw std::runtime_error("sqlite: " + opened.error().message);
    store_ = std::move(*opened);
    if (auto migrated = store_->migrate(); !migrated)
      throw std::runtime_error("migrate: " + migrated.error().message);
    auth_ =
        std::make_unique<fetchd::auth::AuthService>(*store_, clock_, fetchd::auth::AuthSettings{});
    log_ =
        std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
    api_ = std::make_unique<api::RestApi>(*store_, *auth_, clock_, metrics_, log_);
    api::ApiPolicy policy;
    policy.allow_private = false;
    policy.max_tasks_per_user = 1000;
    policy.max_parameters_bytes = 64 * 1024;
    api_->set_policy(std::move(policy));
    ensure_account("fuzzuser", fetchd::Role::kUser, kUserToken);
    ensure_account("fuzzadmin", fetchd::Role::kAdmin, kAdminToken);
  }

  api::RestApi& api() { return *api_; }

  // Inputs log out, delete users and disable them: put the accounts back. False when that
  // takes a new world (a disabled user).
  bool restore_accounts() {
    return ensure_account("fuzzuser", fetchd::Role::kUser, kUserToken) &&
           ensure_account("fuzzadmin", fetchd::Role::kAdmin, kAdminToken);
  }

 private:
  bool ensure_account(const std::string& name, fetchd::Role role, std::string_view token) {
    const auto hash = fetchd::auth::hash_token(token);
    if (auto user = store_->find_token_user(hash, clock_.now())) return !user->disabled;
    auto user = store_->find_user_by_name(name);
    if (!user) {
      user = store_->create_user(fetchd::NewUser{name, "$argon2id$unused", role}, clock_.now());
      if (!user) throw std::runtime_error("create_user: " + user.error().message);
      fetchd::TaskSpec spec;
      spec.name = name + "'s task";
      spec.url = "https://example.com/php-architecture/";
      spec.parameters = {{"eventfile", "amazingexpo2020.json"}};
      spec.start_time = fetchd::from_unix_ms(1'672'868'498'930);
      spec.end_time = fetchd::from_unix_ms(1'988'487'698'930);
      spec.task_interval = 2;
      if (auto task = store_->create_task(user->id, spec, clock_.now()); !task)
        throw std::runtime_error("create_task: " + task.error().message);
    }
    if (user->disabled) return false;
    const auto stored = store_->create_token(fetchd::TokenRecord{
        hash, user->id, clock_.now(), clock_.now() + std::chrono::hours(24 * 365)});
    if (!stored) throw std::runtime_error("create_token: " + stored.error().message);
    return true;
  }

  FixedClock clock_;
  fetchd::Metrics metrics_;
  std::unique_ptr<fetchd::Store> store_;
  std::unique_ptr<fetchd::auth::AuthService> auth_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<api::RestApi> api_;
};

// What the server calls: the current world's API, password hashing left out (see above).
// The world is only replaced between inputs, when no request is in flight.
class FuzzHandler final : public api::Handler {
 public:
  api::Response handle(const api::Request& request) override {
    if (world_->api().is_blocking(request))
      return api::problem(422, "password routes are not fuzzed", request.request_id);
    return world_->api().handle(request);
  }
  bool is_blocking(const api::Request& request) const override {
    return world_->api().is_blocking(request);
  }

  void before_input() {
    if (++inputs_ % kInputsPerWorld == 0 || !world_->restore_accounts())
      world_ = std::make_unique<World>();
  }

 private:
  std::unique_ptr<World> world_ = std::make_unique<World>();
  unsigned inputs_ = 0;
};

struct Fixture {
  Fixture()
      : server(
            [] {
              api::HttpServerOptions o;
              o.host = "127.0.0.1";
              o.port = 0;
              o.threads = 1;
              o.blocking_threads = 1;
              o.max_body_bytes = 64 * 1024;
              o.max_header_bytes = 8 * 1024;
              o.header_timeout = 2s;
              o.body_timeout = 2s;
              o.idle_timeout = 2s;
              return o;
            }(),
            handler,
            std::make_shared<spdlog::logger>("fuzz-http",
                                             std::make_shared<spdlog::sinks::null_sink_mt>())) {
    if (auto started = server.start(); !started)
      throw std::runtime_error("cannot start the server: " + started.error().message);
  }
  FuzzHandler handler;
  api::HttpServer server;
};

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Sends the input, half-closes, and reads until the server closes. False on a timeout. Every
// call is retried on EINTR: libFuzzer's timer (SIGALRM) interrupts them now and then.
bool exchange(std::uint16_t port, std::string_view input, std::string& answer) {
  Socket sock(::socket(AF_INET, SOCK_STREAM, 0));
  if (sock.fd() < 0) throw std::runtime_error("socket() failed");
  const int one = 1;
  ::setsockopt(sock.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // The half-close below leaves this side in TIME_WAIT: where the kernel does not reuse those
  // ports for loopback (net.ipv4.tcp_tw_reuse), a long run may wait for free ones.
  for (int attempt = 0;; ++attempt) {
    if (::connect(sock.fd(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0)
      break;
    if (errno == EISCONN) break;  // an interrupted connect that completed meanwhile
    if ((errno != EINTR && errno != EADDRNOTAVAIL && errno != EALREADY && errno != EINPROGRESS) ||
        attempt == 1000)
      throw std::runtime_error(std::string("connect() failed: ") + std::strerror(errno));
    ::usleep(errno == EADDRNOTAVAIL ? 10'000 : 1'000);
  }

  // The server may answer and close before reading everything (a body over the limit): the
  // rest of the input then has nowhere to go, which is fine.
  std::size_t sent = 0;
  while (sent < input.size()) {
    const auto n = ::send(sock.fd(), input.data() + sent, input.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(sock.fd(), SHUT_WR);

  const auto deadline = std::chrono::steady_clock::now() + kAnswerTimeout;
  char buffer[16384];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) return false;
    pollfd p{sock.fd(), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()) + 1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) throw std::runtime_error(std::string("poll() failed: ") + std::strerror(errno));
    if (ready == 0) continue;  // the deadline check above decides
    const auto n = ::recv(sock.fd(), buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;  // closed, or reset after the answer
    if (answer.size() < kMaxAnswerBytes) answer.append(buffer, static_cast<std::size_t>(n));
  }
}

// The last inputs, oldest first, for the report of a failure.
class History {
 public:
  void add(std::string_view input) { inputs_[next_++ % inputs_.size()] = std::string(input); }
  void write() const {
    const char* dir = std::getenv("FUZZ_HISTORY_DIR");
    if (!dir || !*dir) return;
    const std::size_t count = std::min(next_, inputs_.size());
    for (std::size_t i = 0; i < count; ++i) {
      const auto& input = inputs_[(next_ - count + i) % inputs_.size()];
      char name[32];
      std::snprintf(name, sizeof name, "/input-%02zu", i);
      if (std::FILE* f = std::fopen((std::string(dir) + name).c_str(), "wb")) {
        std::fwrite(input.data(), 1, input.size(), f);
        std::fclose(f);
      }
    }
    std::fprintf(stderr, "the last %zu inputs (the failing one last) are in %s\n", count, dir);
  }

 private:
  std::array<std::string, 32> inputs_;
  std::size_t next_ = 0;
};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// What is wrong with the answers (pipelined requests get several), as far as they can be
// framed: an answer to HEAD has a Content-Length but no body, and ends the walk.
const char* check_answers(std::string_view answer) {
  std::size_t at = 0;
  bool first = true;
  while (at < answer.size()) {
    const auto rest = answer.substr(at);
    const bool status_line = rest.size() >= 12 && rest.substr(0, 9) == "HTTP/1.1 " &&
                             is_digit(rest[9]) && is_digit(rest[10]) && is_digit(rest[11]);
    if (!status_line)
      return first ? "an answer that does not start with an HTTP/1.1 status line" : nullptr;
    const int status = (rest[9] - '0') * 100 + (rest[10] - '0') * 10 + (rest[11] - '0');
    if (status < 100 || status > 599) return "a status outside 100-599";
    if (status >= 500 && status != 503) return "a 5xx answer other than 503";
    first = false;
    const auto header_end = rest.find("\r\n\r\n");
    if (header_end == std::string_view::npos) return nullptr;
    const std::string head = lower(rest.substr(0, header_end));
    const auto length_at = head.find("\r\ncontent-length:");
    std::size_t length = 0;
    if (length_at != std::string::npos) {
      std::size_t i = length_at + 17;
      while (i < head.size() && head[i] == ' ') ++i;
      while (i < head.size() && is_digit(head[i]) && length < kMaxAnswerBytes)
        length = length * 10 + static_cast<std::size_t>(head[i++] - '0');
    }
    at += header_end + 4 + length;
  }
  return nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fixture;
  static History history;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  history.add(input);
  fixture.handler.before_input();
  std::string answer;
  const char* problem = nullptr;
  if (!exchange(fixture.server.port(), input, answer)) {
    // Stuck on this connection only, or on all of them (an I/O thread that never returns)?
    std::string health;
    const bool healthy =
        exchange(fixture.server.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", health) &&
        health.starts_with("HTTP/1.1 200");
    problem = healthy ? "no answer nor close within 10 s (GET /healthz still answers)"
                      : "no answer nor close within 10 s, and GET /healthz gets none either";
    // FUZZ_HTTP_DEBUG=1: the sockets of the server's port and every thread's stack, to see
    // where the server waits.
    if (std::getenv("FUZZ_HTTP_DEBUG")) {
      const auto port = std::to_string(fixture.server.port());
      const auto pid = std::to_string(::getpid());
      const std::string commands = "ss -tanoi '( sport = :" + port + " or dport = :" + port +
                                   " )' >&2; gdb -p " + pid +
                                   " -batch -ex 'thread apply all bt 40' >&2 2>/dev/null";
      if (std::system(commands.c_str()) != 0) std::fprintf(stderr, "(debug commands failed)\n");
    }
  } else {
    // For whoever writes seeds: what the server said to each input.
    static const bool echo = std::getenv("FUZZ_HTTP_ECHO") != nullptr;
    if (echo) std::fprintf(stderr, "-> %s\n", answer.substr(0, answer.find('\r')).c_str());
    problem = check_answers(answer);
  }
  if (problem) {
    history.write();
    fetchd::fuzz::property_failed(problem, input);
  }
  return 0;
}
