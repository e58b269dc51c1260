// The HTTP/1.1 server: one coroutine per connection, on one I/O thread's io_context; requests
// read and answered one at a time, limits and timeouts enforced here, the Handler called inline
// or on the blocking pool. The only file that knows Beast and Asio.
#include "api/http_server.hpp"

#include <utility>  // GCC 12 + Boost 1.74: Asio's coroutine support needs it included first

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "api/problem.hpp"
#include "core/thread_name.hpp"

namespace fetchd::api {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using ErrorCodeT = boost::system::error_code;

constexpr std::string_view kServerHeader = "fetchd/" FETCHD_VERSION;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::size_t kReadChunk = 4096;
// After an error answer the client may still be sending (a body over the limit): reading what
// it sends for a moment before closing keeps the kernel from answering with a reset that would
// destroy our answer in the client's receive buffer.
constexpr auto kLingerTime = std::chrono::milliseconds(500);
constexpr std::size_t kLingerBytes = 8 * 1024 * 1024;
// After the grace period, connections closed by force get this long to unwind.
constexpr auto kUnwindTime = std::chrono::milliseconds(200);

// Beast 1.74 speaks boost::string_view.
beast::string_view bsv(std::string_view s) {
  return {s.data(), s.size()};
}

bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(bsv(a), bsv(b));
}

auto redirect(ErrorCodeT& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

struct Connection {
  explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}
  beast::tcp_stream stream;
  // Waiting for (the headers of) the next request: stop() may close it at once. Only touched
  // on the connection's thread.
  bool between_requests = true;
};

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a path; nullopt when an escape is malformed or the result holds a NUL.
std::optional<std::string> decode_path(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      if (i + 2 >= raw.size()) return std::nullopt;
      const int hi = hex_value(raw[i + 1]);
      const int lo = hex_value(raw[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return std::nullopt;
    out += c;
  }
  return out;
}

// Origin-form "/p?q", or absolute-form "http://host/p?q" (which servers must accept).
// Returns false when the target is neither.
bool split_target(std::string_view target, std::string_view& path, std::string_view& query) {
  for (std::string_view scheme : {std::string_view("http://"), std::string_view("https://")}) {
    if (target.size() >= scheme.size() && iequals(target.substr(0, scheme.size()), scheme)) {
      const auto rest = target.substr(scheme.size());
      const auto cut = rest.find_first_of("/?");
      target = cut == std::string_view::npos ? std::string_view("/") : rest.substr(cut);
      if (target.front() == '?') return false;
      break;
    }
  }
  if (target.empty() || target.front() != '/') return false;
  const auto q = target.find('?');
  path = target.substr(0, q);
  query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  return true;
}

bool bodyless_status(int status) {
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

// Framing is ours: a handler must not be able to break it, nor to split a header.
bool acceptable_extra_header(std::string_view name, std::string_view value) {
  if (iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
      iequals(name, "connection") || iequals(name, "x-request-id") || iequals(name, "server"))
    return false;
  return name.find_first_of("\r\n: ") == std::string_view::npos &&
         value.find_first_of("\r\n") == std::string_view::npos;
}

// Malformed input (as opposed to the peer going away, a timeout or a limit).
bool is_parse_error(const ErrorCodeT& ec) {
  if (ec.category() != http::make_error_code(http::error::bad_method).category()) return false;
  switch (static_cast<http::error>(ec.value())) {
    case http::error::end_of_stream:
    case http::error::partial_message:
    case http::error::need_more:
    case http::error::need_buffer:
    case http::error::header_limit:
    case http::error::body_limit:
    case http::error::buffer_overflow:
      return false;
    default:
      return true;
  }
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t random_seed() {
  std::random_device device;
  return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

}  // namespace

struct HttpServer::Impl {
  Impl(HttpServerOptions o, Handler& h, std::shared_ptr<spdlog::logger> l)
      : options(std::move(o)), handler(h), log(std::move(l)), id_seed(random_seed()) {}

  // Removes a connection from the registry however its coroutine ends, even when the
  // io_context destroys the coroutine's frame.
  struct ConnectionRegistration {
    Impl& impl;
    std::uint64_t id;
    ~ConnectionRegistration() {
      std::lock_guard lock(impl.connections_mutex);
      impl.connections.erase(id);
      impl.connections_cv.notify_all();
    }
  };

  Result<void> start();
  void stop(std::chrono::milliseconds grace);

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(std::shared_ptr<Connection> conn, std::uint64_t id,
                              std::string remote);
  asio::awaitable<void> serve_requests(Connection& conn, const std::string& remote);
  asio::awaitable<void> answer_error(Connection& conn, int status, std::string_view detail,
                                     std::string_view method, std::string_view path,
                                     std::string_view request_id, const std::string& remote,
                                     SteadyClock::time_point started);
  asio::awaitable<void> linger_close(Connection& conn);
  asio::awaitable<std::size_t> write_response(Connection& conn, Response& res,
                                              std::string_view request_id, bool head, bool keep,
                                              bool http10, ErrorCodeT& ec);

  Response call_handler(const Request& request);
  bool call_is_blocking(const Request& request);
  std::string new_request_id();
  void access_log(std::string_view method, std::string_view path, int status, std::size_t bytes,
                  SteadyClock::time_point started, std::string_view request_id,
                  std::string_view remote);
  void close_connections(bool only_between_requests);
  void log_refusal();
  bool on_own_thread() const;

  const HttpServerOptions options;
  Handler& handler;
  const std::shared_ptr<spdlog::logger> log;
  const std::uint64_t id_seed;
  std::atomic<std::uint64_t> id_counter{0};

  std::mutex state_mutex;  // serialises start() and stop()
  bool started = false;
  bool joined = false;
  std::atomic<bool> stopping{false};
  std::atomic<std::uint16_t> bound_port{0};
  std::atomic<std::int64_t> last_refusal_log_ms{std::numeric_limits<std::int64_t>::min() / 2};

  std::mutex connections_mutex;
  std::condition_variable connections_cv;
  std::unordered_map<std::uint64_t, std::weak_ptr<Connection>> connections;
  std::uint64_t next_connection_id = 0;

  // Declared last so that they go first: handlers left in the io_context when it is destroyed
  // still touch the members above.
  // One io_context per thread, as nginx has one event loop per worker: a connection lives on
  // one of them (round robin), so its handlers never wait for, or wake, another thread, and
  // each io_context is a strand by itself. The acceptor lives on the first.
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<asio::io_context>> ios;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::size_t next_io = 0;  // accept_loop's round robin
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::thread_pool> blocking_pool;
};

Result<void> HttpServer::Impl::start() {
  std::lock_guard lock(state_mutex);
  if (started) return fail(ErrorCode::kInternal, "the HTTP server was already started");
  started = true;

  std::string host = options.host;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string where = fmt::format("{}:{}", options.host, options.port);

  const unsigned thread_count = std::max(1U, options.threads);
  for (unsigned i = 0; i < thread_count; ++i) ios.push_back(std::make_unique<asio::io_context>(1));
  auto fail_start = [&](const std::string& why) {
    acceptor.reset();
    ios.clear();
    joined = true;
    return fail(ErrorCode::kUnavailable, fmt::format("cannot listen on {}: {}", where, why));
  };

  ErrorCodeT ec;
  tcp::endpoint endpoint;
  const auto address = asio::ip::make_address(host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, options.port);
  } else {
    tcp::resolver resolver(*ios.front());
    const auto results =
        resolver.resolve(host, std::to_string(options.port),
                         tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || results.empty()) return fail_start(ec ? ec.message() : "no address");
    endpoint = results.begin()->endpoint();
  }

  acceptor.emplace(*ios.front());
  if (acceptor->open(endpoint.protocol(), ec)) return fail_start(ec.message());
  if (acceptor->set_option(asio::socket_base::reuse_address(true), ec))
    return fail_start(ec.message());
  if (acceptor->bind(endpoint, ec)) return fail_start(ec.message());
  if (acceptor->listen(asio::socket_base::max_listen_connections, ec))
    return fail_start(ec.message());
  bound_port = acceptor->local_endpoint(ec).port();

  blocking_pool.emplace(std::max(1U, options.blocking_threads));
  for (auto& io : ios) work.push_back(asio::make_work_guard(*io));
  asio::co_spawn(*ios.front(), accept_loop(), asio::detached);
  for (auto& io : ios) {
    threads.emplace_back([this, &context = *io] {
      name_this_thread("fetchd-http");
      for (;;) {
        try {
          context.run();
          return;
        } catch (const std::exception& e) {
          log->error("http: unexpected exception on an I/O thread: {}", e.what());
        }
      }
    });
  }
  log->info("http: listening on {} (port {})", where, bound_port.load());
  return {};
}

bool HttpServer::Impl::on_own_thread() const {
  const auto self = std::this_thread::get_id();
  for (const auto& t : threads)
    if (t.get_id() == self) return true;
  return false;
}

void HttpServer::Impl::close_connections(bool only_between_requests) {
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(connections_mutex);
    for (auto& [id, weak] : connections)
      if (auto conn = weak.lock()) live.push_back(std::move(conn));
  }
  for (auto& conn : live) {
    asio::post(conn->stream.get_executor(), [conn, only_between_requests] {
      if (!only_between_requests || conn->between_requests) conn->stream.close();
    });
  }
}

void HttpServer::Impl::stop(std::chrono::milliseconds grace) {
  std::lock_guard lock(state_mutex);
  if (!started || joined) return;
  if (!stopping.exchange(true)) {
    asio::post(*ios.front(), [this] {
      ErrorCodeT ec;
      acceptor->close(ec);
    });
    close_connections(true);
  }
  if (on_own_thread()) {
    // Joining ourselves would never return; a later stop() from another thread (the
    // destructor at the latest) finishes the job.
    log->error("http: stop() called from an I/O thread; not waiting for the threads");
    return;
  }
  {
    std::unique_lock wait_lock(connections_mutex);
    if (!connections_cv.wait_for(wait_lock, grace, [this] { return connections.empty(); })) {
      log->warn("http: {} connection(s) still busy after the {} ms grace period; closing them",
                connections.size(), grace.count());
      wait_lock.unlock();
      close_connections(false);
      wait_lock.lock();
      connections_cv.wait_for(wait_lock, kUnwindTime, [this] { return connections.empty(); });
    }
  }
  work.clear();
  for (auto& io : ios) io->stop();
  for (auto& t : threads) t.join();
  threads.clear();
  // A blocking request still running finishes here; its answer goes nowhere.
  blocking_pool->join();
  acceptor.reset();
  ios.clear();  // destroys what is left of the connections' coroutines
  blocking_pool.reset();
  joined = true;
  log->info("http: stopped");
}

void HttpServer::Impl::log_refusal() {
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now().time_since_epoch())
          .count();
  auto last = last_refusal_log_ms.load();
  if (now - last >= 1000 && last_refusal_log_ms.compare_exchange_strong(last, now))
    log->warn("http: connection limit ({}) reached; refusing new connections",
              options.max_connections);
}

asio::awaitable<void> HttpServer::Impl::accept_loop() {
  for (;;) {
    tcp::socket socket(*ios[next_io++ % ios.size()]);
    ErrorCodeT ec;
    co_await acceptor->async_accept(socket, redirect(ec));
    if (stopping) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of descriptors, typically: back off rather than spin.
      log->warn("http: accept failed: {}", ec.message());
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
      co_await pause.async_wait(redirect(ec));
      continue;
    }
    std::uint64_t id = 0;
    std::shared_ptr<Connection> conn;
    {
      std::lock_guard lock(connections_mutex);
      if (connections.size() < options.max_connections) {
        id = next_connection_id++;
        conn = std::make_shared<Connection>(std::move(socket));
        connections.emplace(id, conn);
      }
    }
    if (!conn) {
      socket.close(ec);
      log_refusal();
      continue;
    }
    auto& sock = conn->stream.socket();
    sock.set_option(tcp::no_delay(true), ec);
    std::string remote = "-";
    if (auto ep = sock.remote_endpoint(ec); !ec) {
      auto addr = ep.address();
      if (addr.is_v6() && addr.to_v6().is_v4_mapped())
        addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
      remote = addr.to_string();
    }
    auto executor = conn->stream.get_executor();
    asio::co_spawn(executor, serve(std::move(conn), id, std::move(remote)), asio::detached);
  }
}

asio::awaitable<void> HttpServer::Impl::serve(std::shared_ptr<Connection> conn, std::uint64_t id,
                                              std::string remote) {
  ConnectionRegistration registration{*this, id};
  try {
    co_await serve_requests(*conn, remote);
  } catch (const std::exception& e) {
    log->error("http: connection from {} failed: {}", remote, e.what());
  }
  ErrorCodeT ec;
  conn->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  conn->stream.close();
}

std::string HttpServer::Impl::new_request_id() {
  return fmt::format("{:016x}", splitmix64(id_seed + id_counter.fetch_add(1)));
}

Response HttpServer::Impl::call_handler(const Request& request) {
  try {
    return handler.handle(request);
  } catch (const std::exception& e) {
    log->error("http: request {} ({} {}) failed: {}", request.request_id, request.method,
               request.path, e.what());
  } catch (...) {
    log->error("http: request {} ({} {}) failed with a non-standard exception", request.request_id,
               request.method, request.path);
  }
  return problem(500, "internal error; the server log has the details", request.request_id);
}

bool HttpServer::Impl::call_is_blocking(const Request& request) {
  try {
    return handler.is_blocking(request);
  } catch (const std::exception& e) {
    log->error("http: request {}: is_blocking failed: {}", request.request_id, e.what());
  }
  return false;
}

void HttpServer::Impl::access_log(std::string_view method, std::string_view path, int status,
                                  std::size_t bytes, SteadyClock::time_point started,
                                  std::string_view request_id, std::string_view remote) {
  const double ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - started).count();
  log->info("{} {} {} {} {:.1f}ms id={} remote={}", method.empty() ? "-" : method,
            path.empty() ? "-" : path, status, bytes, ms, request_id, remote);
}

asio::awaitable<std::size_t> HttpServer::Impl::write_response(Connection& conn, Response& res,
                                                              std::string_view request_id,
                                                              bool head, bool keep, bool http10,
                                                              ErrorCodeT& ec) {
  http::response<http::string_body> out;
  out.version(11);
  out.result(static_cast<unsigned>(res.status));
  out.set(http::field::server, bsv(kServerHeader));
  for (const auto& [name, value] : res.headers) {
    if (acceptable_extra_header(name, value))
      out.insert(bsv(name), bsv(value));
    else
      log->warn("http: request {}: dropped response header '{}'", request_id, name);
  }
  out.set("X-Request-Id", bsv(request_id));
  std::size_t body_bytes = 0;
  if (!bodyless_status(res.status)) {
    if (!res.content_type.empty()) out.set(http::field::content_type, res.content_type);
    out.content_length(res.body.size());
    if (!head) {
      body_bytes = res.body.size();
      out.body() = std::move(res.body);
    }
  }
  out.keep_alive(keep);
  if (keep && http10) out.set(http::field::connection, "keep-alive");
  // A client that stops reading its answers must not hold the connection forever.
  conn.stream.expires_after(options.body_timeout);
  co_await http::async_write(conn.stream, out, redirect(ec));
  co_return body_bytes;
}

asio::awaitable<void> HttpServer::Impl::linger_close(Connection& conn) {
  ErrorCodeT ec;
  conn.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  conn.stream.expires_after(kLingerTime);
  std::array<char, 8192> sink{};
  std::size_t drained = 0;
  while (!ec && drained < kLingerBytes)
    drained += co_await conn.stream.async_read_some(asio::buffer(sink), redirect(ec));
  conn.stream.close();
}

asio::awaitable<void> HttpServer::Impl::answer_error(Connection& conn, int status,
                                                     std::string_view detail,
                                                     std::string_view method, std::string_view path,
                                                     std::string_view request_id,
                                                     const std::string& remote,
                                                     SteadyClock::time_point started) {
  Response res = problem(status, detail, request_id);
  ErrorCodeT ec;
  const auto bytes =
      co_await write_response(conn, res, request_id, method == "HEAD", false, false, ec);
  access_log(method, path, status, bytes, started, request_id, remote);
  if (!ec) co_await linger_close(conn);
}

asio::awaitable<void> HttpServer::Impl::serve_requests(Connection& conn,
                                                       const std::string& remote) {
  beast::flat_buffer buffer;
  bool first = true;
  for (;;) {
    conn.between_requests = true;
    if (stopping) co_return;
    ErrorCodeT ec;
    // Waiting for a request to begin is the idle timeout on a kept-alive connection; on a new
    // one, a client that connects and says nothing counts as slow headers.
    if (buffer.size() == 0) {
      conn.stream.expires_after(first ? options.header_timeout : options.idle_timeout);
      const auto n = co_await conn.stream.async_read_some(buffer.prepare(kReadChunk), redirect(ec));
      if (ec) co_return;  // gone, idle too long, or stop()
      buffer.commit(n);
    }
    first = false;
    const auto started = SteadyClock::now();

    // One deadline for the whole header, however slowly it trickles in.
    conn.stream.expires_after(options.header_timeout);
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(std::min<std::uint64_t>(
        options.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    // Checked below, once the header is known. Not boost::none: Beast 1.74 compares the
    // Content-Length with the optional itself, and every length is greater than none.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    co_await http::async_read_header(conn.stream, buffer, parser, redirect(ec));
    if (ec) {
      if (ec == http::error::header_limit) {
        co_await answer_error(conn, 431, "request header too large", {}, {}, new_request_id(),
                              remote, started);
      } else if (is_parse_error(ec)) {
        co_await answer_error(conn, 400, "malformed HTTP request", {}, {}, new_request_id(), remote,
                              started);
      }
      co_return;  // timeout, reset, or the peer closed mid-header
    }
    conn.between_requests = false;

    auto& msg = parser.get();
    const std::string method(msg.method_string());
    const bool head = msg.method() == http::verb::head;
    const bool http10 = msg.version() < 11;
    const bool keep_alive = msg.keep_alive();
    const std::string target(msg.target());
    std::string_view raw_path;
    std::string_view query;
    const bool target_ok = split_target(target, raw_path, query);
    std::string request_id(msg["X-Request-Id"]);
    if (!valid_request_id(request_id)) request_id = new_request_id();

    if (!target_ok) {
      co_await answer_error(conn, 400, "the request target must be an absolute path", method, {},
                            request_id, remote, started);
      co_return;
    }
    auto path = decode_path(raw_path);
    if (!path) {
      co_await answer_error(conn, 400, "the request path is not validly percent-encoded", method,
                            raw_path, request_id, remote, started);
      co_return;
    }
    if (const auto length = parser.content_length(); length && *length > options.max_body_bytes) {
      co_await answer_error(
          conn, 413, fmt::format("the request body is over {} bytes", options.max_body_bytes),
          method, raw_path, request_id, remote, started);
      co_return;
    }
    if (!parser.is_done()) {
      if (beast::iequals(msg[http::field::expect], "100-continue")) {
        conn.stream.expires_after(options.body_timeout);
        co_await asio::async_write(conn.stream, asio::buffer(kContinue), redirect(ec));
        if (ec) co_return;
      }
      parser.body_limit(options.max_body_bytes);
      conn.stream.expires_after(options.body_timeout);
      co_await http::async_read(conn.stream, buffer, parser, redirect(ec));
      if (ec == http::error::body_limit) {
        co_await answer_error(
            conn, 413, fmt::format("the request body is over {} bytes", options.max_body_bytes),
            method, raw_path, request_id, remote, started);
        co_return;
      }
      if (ec) {
        if (is_parse_error(ec))
          co_await answer_error(conn, 400, "malformed HTTP request body", method, raw_path,
                                request_id, remote, started);
        co_return;
      }
    }

    Request request;
    // HEAD is GET without the body: handlers and routes need not know about it.
    request.method = head ? "GET" : method;
    request.path = std::move(*path);
    request.query = std::string(query);
    request.headers.reserve(std::distance(msg.begin(), msg.end()));
    for (const auto& field : msg) {
      std::string name(field.name_string());
      for (char& c : name)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      request.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    request.body = std::move(msg.body());
    request.request_id = request_id;
    request.remote_address = remote;

    Response response;
    if (call_is_blocking(request)) {
      response = co_await asio::co_spawn(
          blocking_pool->get_executor(),
          [this, &request]() -> asio::awaitable<Response> { co_return call_handler(request); },
          asio::use_awaitable);
    } else {
      response = call_handler(request);
    }
    if (response.status < 200 || response.status > 599) {
      log->error("http: request {}: the handler answered with status {}", request_id,
                 response.status);
      response = problem(500, "internal error; the server log has the details", request_id);
    }

    const bool keep = keep_alive && !stopping;
    const int status = response.status;
    const auto bytes = co_await write_response(conn, response, request_id, head, keep, http10, ec);
    access_log(method, raw_path, status, bytes, started, request_id, remote);
    if (ec) co_return;
    if (!keep) {
      conn.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
  }
}

HttpServer::HttpServer(HttpServerOptions options, Handler& handler,
                       std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<Impl>(std::move(options), handler, std::move(log))) {}

HttpServer::~HttpServer() {
  stop();
}

Result<void> HttpServer::start() {
  return impl_->start();
}

std::uint16_t HttpServer::port() const {
  return impl_->bound_port.load();
}

void HttpServer::stop(std::chrono::milliseconds grace) {
  impl_->stop(grace);
}

}  // namespace fetchd::api
