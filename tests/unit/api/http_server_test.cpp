// HttpServer over real loopback sockets: framing, keep-alive, limits, timeouts, request ids,
// the blocking pool, the last-resort 500 and graceful stop. Plain POSIX sockets on the client
// side, so that the test knows nothing of Beast.
#include "api/http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

namespace fetchd::api {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;

  bool has(const std::string& name) const { return headers.count(name) > 0; }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// A blocking loopback client that parses just enough HTTP/1.1 for these tests.
class Client {
 public:
  explicit Client(std::uint16_t port, const char* address = "127.0.0.1") {
    const bool v6 = std::string_view(address).find(':') != std::string_view::npos;
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    int rc = -1;
    if (v6) {
      sockaddr_in6 sa{};
      sa.sin6_family = AF_INET6;
      sa.sin6_port = htons(port);
      ::inet_pton(AF_INET6, address, &sa.sin6_addr);
      rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    } else {
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(port);
      ::inet_pton(AF_INET, address, &sa.sin_addr);
      rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    }
    connected_ = rc == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }

  // Best effort: the server may have closed already, which the reads then show.
  void send(std::string_view data) {
    while (!data.empty()) {
      const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // The next response; nullopt when the connection closed or nothing came in time.
  std::optional<HttpReply> read_reply(bool head = false,
                                      std::chrono::milliseconds timeout = 3000ms) {
    const auto deadline = SteadyClock::now() + timeout;
    std::size_t end = 0;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos)
      if (!fill(deadline)) return std::nullopt;
    std::istringstream head_lines(buffer_.substr(0, end));
    buffer_.erase(0, end + 4);
    HttpReply reply;
    std::string line;
    std::getline(head_lines, line);
    if (line.rfind("HTTP/1.", 0) != 0 || line.size() < 12) return std::nullopt;
    reply.status = std::stoi(line.substr(9, 3));
    while (std::getline(head_lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto colon = line.find(':');
      if (colon == std::string::npos) return std::nullopt;
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      reply.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    }
    std::size_t length = 0;
    if (!head && reply.has("content-length")) length = std::stoul(reply.header("content-length"));
    while (buffer_.size() < length)
      if (!fill(deadline)) return std::nullopt;
    reply.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return reply;
  }

  // True when the server closes the connection (EOF or reset) within the timeout; bytes
  // received meanwhile are kept.
  bool closed_within(std::chrono::milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      const int result = fill_raw(deadline);
      if (result == 0) return true;  // EOF or error
      if (result < 0) return false;  // timeout
    }
  }

  const std::string& pending() const { return buffer_; }

 private:
  // 1: got bytes, 0: EOF or error, -1: timeout.
  int fill_raw(SteadyClock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) return -1;
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready == 0) return -1;
    char chunk[16384];
    const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return 0;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return 1;
  }
  bool fill(SteadyClock::time_point deadline) { return fill_raw(deadline) == 1; }

  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

std::string get(const std::string& target, const std::string& extra = {}) {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n";
}

// Keeps what the server logs, for assertions (the I/O threads write while the test reads).
class CaptureSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::string text() {
    std::lock_guard lock(mutex_);
    return text_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    text_.append(line.data(), line.size());
  }
  void flush_() override {}

 private:
  std::string text_;
};

class TestHandler : public Handler {
 public:
  Response handle(const Request& r) override {
    if (r.path == "/throw") throw std::runtime_error("boom from the handler");
    if (r.path == "/slow") std::this_thread::sleep_for(300ms);
    if (r.path == "/thread" || r.path == "/blocking") {
      std::lock_guard lock(mutex);
      threads[r.path] = std::this_thread::get_id();
    }
    if (r.path == "/blocking") {
      std::unique_lock lock(mutex);
      if (gated)
        gate.wait_for(lock, 3s, [&] { return gate_open; });
      else
        gate.wait_for(lock, blocking_sleep, [] { return false; });
    }
    Response res;
    res.content_type = "text/plain";
    if (r.path == "/nocontent") {
      res.status = 204;
      return res;
    }
    if (r.path == "/headers") {
      for (const auto& [name, value] : r.headers) res.body += name + "=" + value + ";";
      res.headers.emplace_back("X-Extra", "yes");
      res.headers.emplace_back("X-Split", "a\r\nInjected: 1");
      return res;
    }
    res.body = r.method + "|" + r.path + "|" + r.query + "|" + r.request_id + "|" +
               r.remote_address + "|" + r.body;
    return res;
  }
  bool is_blocking(const Request& r) const override { return r.path == "/blocking"; }

  std::mutex mutex;
  std::map<std::string, std::thread::id> threads;
  std::chrono::milliseconds blocking_sleep{300};
  // With `gated`, /blocking waits until the test opens the gate.
  bool gated = false;
  bool gate_open = false;
  std::condition_variable gate;
};

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest() {
    log_ = std::make_shared<spdlog::logger>("http-test", sink_);
    log_->set_level(spdlog::level::info);
    options_.port = 0;
    options_.threads = 2;
    options_.blocking_threads = 1;
    options_.max_body_bytes = 1024;
    options_.max_header_bytes = 2048;
    options_.header_timeout = 1000ms;
    options_.body_timeout = 1000ms;
    options_.idle_timeout = 1000ms;
  }

  void start() {
    server_ = std::make_unique<HttpServer>(options_, handler_, log_);
    auto started = server_->start();
    ASSERT_TRUE(started.has_value()) << started.error().message;
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  std::string log_text() { return sink_->text(); }
  // The access line is written once the answer is sent, so it may trail the client's read.
  std::string log_once_it_has(const std::string& needle) {
    for (int i = 0; i < 100 && log_text().find(needle) == std::string::npos; ++i)
      std::this_thread::sleep_for(10ms);
    return log_text();
  }

  HttpServerOptions options_;
  TestHandler handler_;
  std::shared_ptr<CaptureSink> sink_ = std::make_shared<CaptureSink>();
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<HttpServer> server_;
  std::uint16_t port_ = 0;
};

TEST_F(HttpServerTest, AnswersAGetWithTheHandlersResponse) {
  start();
  Client c(port_);
  c.send(get("/echo/a%20b?x=1&y=%20", "Content-Length: 0\r\n"));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const std::string id = r->header("x-request-id");
  EXPECT_EQ(r->body, "GET|/echo/a b|x=1&y=%20|" + id + "|127.0.0.1|");
  EXPECT_EQ(r->header("content-type"), "text/plain");
  EXPECT_EQ(r->header("content-length"), std::to_string(r->body.size()));
  EXPECT_EQ(r->header("server"), "fetchd/" FETCHD_VERSION);
}

TEST_F(HttpServerTest, PassesLowerCasedHeadersAndBodyAndKeepsFramingHeadersItsOwn) {
  start();
  Client c(port_);
  c.send(
      "POST /headers HTTP/1.1\r\nHost: t\r\nX-Mixed-Case: Value\r\nContent-Length: 3\r\n\r\nabc");
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("x-mixed-case=Value;"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("host=t;"), std::string::npos) << r->body;
  EXPECT_EQ(r->header("x-extra"), "yes");
  EXPECT_FALSE(r->has("x-split"));  // a header value with CR LF is dropped
  EXPECT_FALSE(r->has("injected"));

  c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
  r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body.substr(r->body.rfind('|') + 1), "hello");
}

TEST_F(HttpServerTest, KeepsTheConnectionAliveAndAnswersPipelinedRequestsInOrder) {
  start();
  Client c(port_);
  c.send(get("/one"));
  auto first = c.read_reply();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body.substr(0, 8), "GET|/one");
  EXPECT_FALSE(first->has("connection"));
  c.send(get("/two"));
  auto second = c.read_reply();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body.substr(0, 8), "GET|/two");

  c.send(get("/three") + get("/four") + get("/five"));
  for (std::string path : {"/three", "/four", "/five"}) {
    auto r = c.read_reply();
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->body.substr(0, 4 + path.size()), "GET|" + path);
  }
  EXPECT_NE(first->header("x-request-id"), second->header("x-request-id"));
}

TEST_F(HttpServerTest, ClosesAfterAnHttp10RequestAndAfterConnectionClose) {
  start();
  Client old(port_);
  old.send("GET /old HTTP/1.0\r\n\r\n");
  auto r = old.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(old.closed_within(1000ms));

  Client kept(port_);
  kept.send("GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  r = kept.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("connection"), "keep-alive");
  EXPECT_FALSE(kept.closed_within(100ms));

  Client c(port_);
  c.send(get("/bye", "Connection: close\r\n"));
  r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.closed_within(1000ms));
}

TEST_F(HttpServerTest, HeadGetsTheGetHeadersWithoutABody) {
  start();
  Client c(port_);
  c.send("HEAD /echo HTTP/1.1\r\nHost: t\r\nX-Request-Id: head-1\r\n\r\n");
  auto head = c.read_reply(/*head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  // The handler saw a GET; the length is that of the GET's body.
  const std::string get_body = "GET|/echo||head-1|127.0.0.1|";
  EXPECT_EQ(head->header("content-length"), std::to_string(get_body.size()));
  // Nothing but the next answer follows on the connection.
  c.send(get("/after"));
  auto next = c.read_reply();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body.substr(0, 10), "GET|/after");
  const std::string text = log_once_it_has("HEAD /echo 200 0 ");
  EXPECT_NE(text.find("HEAD /echo 200 0 "), std::string::npos) << text;
}

TEST_F(HttpServerTest, NoContentHasNoBodyNorLength) {
  start();
  Client c(port_);
  c.send(get("/nocontent") + get("/after"));
  auto r = c.read_reply(/*head=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_FALSE(r->has("content-length"));
  EXPECT_FALSE(r->has("content-type"));
  auto next = c.read_reply();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

TEST_F(HttpServerTest, EchoesAValidRequestIdAndGeneratesOtherwise) {
  start();
  Client c(port_);
  auto ask = [&](const std::string& id) {
    c.send(get("/id", "X-Request-Id: " + id + "\r\n"));
    auto r = c.read_reply();
    return r ? r->header("x-request-id") : std::string("<no reply>");
  };
  EXPECT_EQ(ask("abc-123_X.y"), "abc-123_X.y");
  const std::string longest(128, 'a');
  EXPECT_EQ(ask(longest), longest);

  const auto is_generated = [](const std::string& id) {
    return id.size() == 16 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
  };
  const std::string too_long(129, 'a');
  const auto g1 = ask(too_long);
  const auto g2 = ask("bad id!");
  const auto g3 = ask("semi;colon");
  EXPECT_TRUE(is_generated(g1)) << g1;
  EXPECT_TRUE(is_generated(g2)) << g2;
  EXPECT_TRUE(is_generated(g3)) << g3;
  EXPECT_NE(g1, g2);
  EXPECT_NE(g2, g3);

  c.send(get("/none"));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_TRUE(is_generated(r->header("x-request-id")));
  // The handler got the same id that went back.
  EXPECT_NE(r->body.find("|" + r->header("x-request-id") + "|"), std::string::npos);
}

TEST_F(HttpServerTest, RejectsInvalidPathEncodingWith400) {
  start();
  for (std::string target : {"/a%2", "/a%zz", "/a%00b", "/a%", "*"}) {
    Client c(port_);
    c.send(get(target));
    auto r = c.read_reply();
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 400) << target;
    EXPECT_EQ(r->header("content-type"), "application/problem+json");
    EXPECT_TRUE(c.closed_within(1000ms)) << target;
  }
  Client c(port_);
  c.send(get("/a%2Fb%41"));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body.substr(0, 9), "GET|/a/bA");
  c.send(get("http://example.com/abs?q=1"));
  r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body.substr(0, 13), "GET|/abs|q=1|");
}

TEST_F(HttpServerTest, AnswersGarbageWith400ProblemAndCloses) {
  start();
  Client c(port_);
  c.send("HELLO THERE\r\n\r\n");
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->header("content-type"), "application/problem+json");
  EXPECT_NE(r->body.find("\"status\":400"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("\"request_id\":\"" + r->header("x-request-id") + "\""),
            std::string::npos);
  EXPECT_TRUE(c.closed_within(1000ms));

  Client bad_length(port_);
  bad_length.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: nope\r\n\r\n");
  r = bad_length.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
}

TEST_F(HttpServerTest, RejectsABodyOverTheLimitByContentLength) {
  start();
  {
    Client c(port_);
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n" +
           std::string(1024, 'x'));
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body.size(), std::string("POST|/echo|||127.0.0.1|").size() + 16 + 1024);
  }
  {
    Client c(port_);
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n" +
           std::string(1025, 'x'));
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(r->header("content-type"), "application/problem+json");
    EXPECT_TRUE(c.closed_within(1500ms));
  }
  {
    // The answer comes before the body is sent at all.
    Client c(port_);
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n");
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
  }
}

TEST_F(HttpServerTest, RejectsAChunkedBodyOverTheLimit) {
  start();
  const std::string chunked =
      "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  auto chunk = [](std::size_t n) {
    std::ostringstream s;
    s << std::hex << n << "\r\n" << std::string(n, 'y') << "\r\n";
    return s.str();
  };
  {
    Client c(port_);
    c.send(chunked + chunk(800) + chunk(224) + "0\r\n\r\n");
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body.substr(r->body.rfind('|') + 1), std::string(1024, 'y'));
  }
  {
    Client c(port_);
    c.send(chunked + chunk(800) + chunk(225) + "0\r\n\r\n");
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_TRUE(c.closed_within(1500ms));
  }
}

TEST_F(HttpServerTest, Answers100ContinueWhenAsked) {
  start();
  Client c(port_);
  c.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  auto interim = c.read_reply(/*head=*/true);
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  c.send("ok");
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body.substr(r->body.size() - 3), "|ok");
}

TEST_F(HttpServerTest, RejectsHeadersOverTheLimitWith431) {
  start();
  {
    Client c(port_);
    c.send(get("/big", "X-Big: " + std::string(1800, 'h') + "\r\n"));
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  {
    Client c(port_);
    c.send(get("/big", "X-Big: " + std::string(2100, 'h') + "\r\n"));
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 431);
    EXPECT_EQ(r->header("content-type"), "application/problem+json");
    EXPECT_TRUE(c.closed_within(1500ms));
  }
}

TEST_F(HttpServerTest, HeaderTimeoutClosesASlowClient) {
  options_.header_timeout = 200ms;
  start();
  {
    // Slow but in time.
    Client c(port_);
    c.send("GET /slowly HTTP/1.1\r\nHost: t\r\n");
    std::this_thread::sleep_for(50ms);
    c.send("\r\n");
    auto r = c.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  {
    // Trickling bytes does not extend the deadline (slowloris).
    Client c(port_);
    const auto begin = SteadyClock::now();
    const std::string request = "GET /trickle HTTP/1.1\r\nHost: t\r\nX-A: b\r\n";
    bool closed = false;
    for (char ch : request) {
      c.send(std::string(1, ch));
      if (c.closed_within(25ms)) {
        closed = true;
        break;
      }
    }
    if (!closed) closed = c.closed_within(1000ms);
    EXPECT_TRUE(closed);
    const auto took = SteadyClock::now() - begin;
    EXPECT_GE(took, 150ms);
    EXPECT_LT(took, 1000ms);
  }
  {
    // Connecting and saying nothing counts as slow headers too.
    Client c(port_);
    EXPECT_TRUE(c.closed_within(1000ms));
  }
}

TEST_F(HttpServerTest, IdleAndBodyTimeoutsCloseTheConnection) {
  options_.idle_timeout = 200ms;
  options_.body_timeout = 200ms;
  start();
  {
    Client c(port_);
    c.send(get("/first"));
    ASSERT_TRUE(c.read_reply());
    std::this_thread::sleep_for(50ms);
    c.send(get("/second"));  // within the idle timeout
    ASSERT_TRUE(c.read_reply());
    const auto begin = SteadyClock::now();
    EXPECT_TRUE(c.closed_within(1000ms));
    EXPECT_GE(SteadyClock::now() - begin, 150ms);
  }
  {
    Client c(port_);
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhalf");
    EXPECT_TRUE(c.closed_within(1000ms));
    EXPECT_EQ(c.pending(), "");  // no answer: it was never a whole request
  }
}

TEST_F(HttpServerTest, RefusesConnectionsOverTheLimit) {
  options_.max_connections = 2;
  start();
  auto a = std::make_unique<Client>(port_);
  Client b(port_);
  for (Client* c : {a.get(), &b}) {
    c->send(get("/hold"));
    ASSERT_TRUE(c->read_reply());
  }
  for (int i = 0; i < 3; ++i) {
    Client over(port_);
    EXPECT_TRUE(over.closed_within(1000ms));
  }
  // Refusals are logged, but not once per connection.
  const std::string text = log_text();
  std::size_t lines = 0;
  for (auto at = text.find("connection limit"); at != std::string::npos;
       at = text.find("connection limit", at + 1))
    ++lines;
  EXPECT_EQ(lines, 1U) << text;

  a.reset();  // frees a slot
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    Client c(port_);
    c.send(get("/again"));
    auto r = c.read_reply(false, 500ms);
    served = r && r->status == 200;
    if (!served) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(served);
  b.send(get("/still"));  // the held connection still works
  auto r = b.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, AHandlerExceptionBecomes500AndTheServerKeepsServing) {
  start();
  Client c(port_);
  c.send(get("/throw", "X-Request-Id: boom-42\r\n"));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->header("content-type"), "application/problem+json");
  EXPECT_EQ(r->body.find("boom from the handler"), std::string::npos);  // not leaked
  EXPECT_NE(r->body.find("boom-42"), std::string::npos);
  const std::string text = log_text();
  EXPECT_NE(text.find("boom-42"), std::string::npos);
  EXPECT_NE(text.find("boom from the handler"), std::string::npos);

  c.send(get("/fine"));
  r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, BlockingRequestsRunOffTheIoThread) {
  options_.threads = 1;
  handler_.gated = true;
  start();
  Client slow(port_);
  slow.send(get("/blocking"));
  // The single I/O thread serves this while the blocking request waits on the pool; were it
  // run inline, this would time out.
  Client quick(port_);
  quick.send(get("/thread"));
  auto q = quick.read_reply();
  ASSERT_TRUE(q);
  EXPECT_EQ(q->status, 200);
  EXPECT_FALSE(slow.read_reply(false, 10ms));
  {
    std::lock_guard lock(handler_.mutex);
    handler_.gate_open = true;
  }
  handler_.gate.notify_all();
  auto s = slow.read_reply();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 200);
  std::lock_guard lock(handler_.mutex);
  ASSERT_EQ(handler_.threads.size(), 2U);
  EXPECT_NE(handler_.threads["/blocking"], handler_.threads["/thread"]);
  EXPECT_NE(handler_.threads["/blocking"], std::this_thread::get_id());
}

TEST_F(HttpServerTest, AccessLogHasOneLinePerRequestWithoutQueryOrHeaderValues) {
  start();
  Client c(port_);
  c.send(get("/tasks/7?token=secret-query",
             "Authorization: Bearer secret-header\r\n"
             "X-Request-Id: log-1\r\n"));
  ASSERT_TRUE(c.read_reply());
  const std::string text = log_once_it_has("id=log-1");
  EXPECT_NE(text.find("GET /tasks/7 200 "), std::string::npos) << text;
  EXPECT_NE(text.find("ms id=log-1 remote=127.0.0.1"), std::string::npos) << text;
  EXPECT_EQ(text.find("secret-query"), std::string::npos);
  EXPECT_EQ(text.find("secret-header"), std::string::npos);
}

TEST_F(HttpServerTest, StopLetsAnInFlightRequestFinishAndClosesIdleConnections) {
  start();
  Client idle(port_);
  idle.send(get("/warm"));
  ASSERT_TRUE(idle.read_reply());
  Client busy(port_);
  busy.send(get("/slow"));
  std::this_thread::sleep_for(50ms);

  const auto begin = SteadyClock::now();
  std::thread stopper([&] { server_->stop(5000ms); });
  EXPECT_TRUE(idle.closed_within(250ms));  // at once, not after the slow request
  auto r = busy.read_reply();
  stopper.join();
  const auto took = SteadyClock::now() - begin;
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_LT(took, 2000ms);

  Client after(port_);
  EXPECT_FALSE(after.connected());
  server_->stop();  // idempotent
}

TEST_F(HttpServerTest, StopGivesUpOnRequestsLongerThanTheGrace) {
  handler_.blocking_sleep = 400ms;
  start();
  Client busy(port_);
  busy.send(get("/blocking"));
  std::this_thread::sleep_for(50ms);
  const auto begin = SteadyClock::now();
  server_->stop(50ms);
  EXPECT_LT(SteadyClock::now() - begin, 1500ms);
  EXPECT_FALSE(busy.read_reply(false, 200ms));
}

TEST_F(HttpServerTest, FailsToStartOnAPortInUse) {
  start();
  HttpServerOptions same = options_;
  same.port = port_;
  HttpServer second(same, handler_, log_);
  auto started = second.start();
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(started.error().message.find(std::to_string(port_)), std::string::npos);
}

TEST_F(HttpServerTest, ListensOnIpv6Loopback) {
  options_.host = "::1";
  server_ = std::make_unique<HttpServer>(options_, handler_, log_);
  if (!server_->start()) GTEST_SKIP() << "no IPv6 loopback here";
  Client c(server_->port(), "::1");
  ASSERT_TRUE(c.connected());
  c.send(get("/six"));
  auto r = c.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("|::1|"), std::string::npos) << r->body;
}

}  // namespace
}  // namespace fetchd::api
