// CurlFetcher: one libcurl multi handle owned by one engine thread, driven by epoll through
// curl's socket interface (curl_multi_socket_action): a ready socket costs the work of its own
// transfer, not a pass over every transfer in flight. Other threads only touch the
// mutex-guarded queue and the wake-up eventfd; everything else (easy handles, the transfers,
// callbacks) lives on the engine thread, so curl needs no locking of its own.
#include "fetch/curl_fetcher.hpp"

#include <curl/curl.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include <spdlog/sinks/null_sink.h>

#include "core/address_guard.hpp"
#include "core/thread_name.hpp"

namespace fetchd {

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw std::runtime_error("curl_global_init failed");
  });
}

struct Pending {
  FetchRequest request;
  Fetcher::Callback done;
};

// What the guard needs from the options, shared read-only by all transfers.
struct Guard {
  bool allow_private = false;
  std::vector<IpRange> allowed;
};

// One transfer in flight; curl's callbacks get a pointer to it (it never moves).
struct Transfer {
  FetchRequest request;
  Fetcher::Callback done;
  const Guard* guard = nullptr;
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  char error_buffer[CURL_ERROR_SIZE] = {};
  bool too_large = false;
  std::string blocked_address;

  Transfer() = default;
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;
  ~Transfer() { curl_slist_free_all(header_list); }
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::size_t bytes = size * count;
  // Counted on decoded bytes: this callback sees the body after gzip/br are undone.
  if (transfer->body.size() + bytes > transfer->request.max_response_bytes) {
    transfer->too_large = true;
    return bytes == 0 ? 1 : 0;  // any other count than `bytes` aborts the transfer
  }
  transfer->body.append(data, bytes);
  return bytes;
}

std::string trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  return std::string(text);
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::size_t bytes = size * count;
  const std::string_view line(data, bytes);
  if (line.starts_with("HTTP/")) {
    // A new response (after a redirect or a 1xx): only the final one's headers are kept.
    transfer->headers.clear();
  } else if (const auto colon = line.find(':'); colon != std::string_view::npos) {
    std::string name = trim(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    transfer->headers.emplace_back(std::move(name), trim(line.substr(colon + 1)));
  }
  return bytes;
}

// Every connection, redirects included, is opened here: the one place the guard can see the
// address actually connected to (after DNS, so rebinding tricks do not get around it).
curl_socket_t on_open_socket(void* user, curlsocktype /*purpose*/, curl_sockaddr* address) {
  auto* transfer = static_cast<Transfer*>(user);
  const auto* sa = &address->addr;
  if (!transfer->guard->allow_private && is_private_address(sa, address->addrlen)) {
    const auto& allowed = transfer->guard->allowed;
    if (std::none_of(allowed.begin(), allowed.end(),
                     [&](const IpRange& range) { return range.contains(sa, address->addrlen); })) {
      transfer->blocked_address = address_text(sa, address->addrlen);
      return CURL_SOCKET_BAD;
    }
  }
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

std::chrono::microseconds info_time(CURL* easy, CURLINFO info) {
  curl_off_t value = 0;
  if (curl_easy_getinfo(easy, info, &value) != CURLE_OK || value < 0) value = 0;
  return std::chrono::microseconds(value);
}

// dns, connect and tls are the durations of those phases; first_byte and total count from
// the start (curl sums them over redirects).
FetchTimings read_timings(CURL* easy) {
  const auto dns = info_time(easy, CURLINFO_NAMELOOKUP_TIME_T);
  const auto connect = info_time(easy, CURLINFO_CONNECT_TIME_T);
  const auto tls = info_time(easy, CURLINFO_APPCONNECT_TIME_T);
  const auto phase = [](auto end, auto begin) {
    return end > begin ? end - begin : std::chrono::microseconds(0);
  };
  FetchTimings timings;
  timings.dns = dns;
  timings.connect = phase(connect, dns);
  timings.tls = tls.count() > 0 ? phase(tls, connect) : std::chrono::microseconds(0);
  timings.first_byte = info_time(easy, CURLINFO_STARTTRANSFER_TIME_T);
  timings.total = info_time(easy, CURLINFO_TOTAL_TIME_T);
  return timings;
}

bool is_tls_error(CURLcode code) {
  switch (code) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
      return true;
    default:
      return false;
  }
}

FetchError make_error(FetchErrorKind kind, std::string message, FetchTimings timings = {}) {
  return FetchError{kind, std::move(message), timings};
}

// curl's own words for what happened: the error buffer when it has something, else the
// code's generic text.
std::string curl_text(const Transfer& transfer, CURLcode code) {
  if (transfer.error_buffer[0] != '\0') return transfer.error_buffer;
  return curl_easy_strerror(code);
}

FetchError map_error(const Transfer& transfer, CURLcode code, const FetchTimings& timings,
                     const CurlFetcherOptions& options) {
  const auto& request = transfer.request;
  if (transfer.too_large || code == CURLE_FILESIZE_EXCEEDED)
    return make_error(
        FetchErrorKind::kTooLarge,
        "response larger than " + std::to_string(request.max_response_bytes) + " bytes", timings);
  if (!transfer.blocked_address.empty() && code == CURLE_COULDNT_CONNECT)
    return make_error(
        FetchErrorKind::kBlocked,
        "address " + transfer.blocked_address + " is private; set fetch.allow_private to allow it",
        timings);
  const std::string text = curl_text(transfer, code);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT: {
      // Which of the two limits ran out: the connect limit only while no connection was
      // made, and then by which one the elapsed time is nearer (curl's clock is not ours).
      const auto total_ms = std::chrono::duration_cast<milliseconds>(timings.total);
      const bool connect_limit = options.connect_timeout && timings.connect.count() == 0 &&
                                 *options.connect_timeout < request.timeout &&
                                 total_ms < (*options.connect_timeout + request.timeout) / 2;
      if (connect_limit)
        return make_error(FetchErrorKind::kConnect,
                          "could not connect within " +
                              std::to_string(options.connect_timeout->count()) + " ms (" + text +
                              ")",
                          timings);
      return make_error(FetchErrorKind::kTimeout,
                        "timed out after " + std::to_string(request.timeout.count()) + " ms",
                        timings);
    }
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return make_error(FetchErrorKind::kDns, "could not resolve host: " + text, timings);
    case CURLE_COULDNT_CONNECT:
      return make_error(FetchErrorKind::kConnect, "could not connect: " + text, timings);
    case CURLE_TOO_MANY_REDIRECTS:
      return make_error(
          FetchErrorKind::kTooManyRedirects,
          "more than " + std::to_string(options.max_redirects) + " redirects (" + text + ")",
          timings);
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT: {
      long redirects = 0;
      curl_easy_getinfo(transfer.easy, CURLINFO_REDIRECT_COUNT, &redirects);
      return make_error(
          FetchErrorKind::kInvalidRequest,
          (redirects > 0 ? "redirected to an unusable URL: " : "unusable URL: ") + text, timings);
    }
    default:
      if (is_tls_error(code))
        return make_error(FetchErrorKind::kTls, "TLS failure: " + text, timings);
      return make_error(FetchErrorKind::kNetwork,
                        std::string("network error: ") + text +
                            (text == curl_easy_strerror(code)
                                 ? std::string()
                                 : std::string(" (") + curl_easy_strerror(code) + ")"),
                        timings);
  }
}

// A problem curl would only report obscurely (or not at all), caught before it starts.
std::optional<std::string> check_request(const FetchRequest& request) {
  const auto colon = request.url.find("://");
  std::string scheme = request.url.substr(0, colon == std::string::npos ? 0 : colon);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "http" && scheme != "https")
    return "only http and https URLs are supported: \"" + request.url + "\"";
  if (request.timeout.count() <= 0) return "timeout must be positive";
  if (request.method.empty()) return "method must not be empty";
  for (const auto& [name, value] : request.headers)
    if (name.find_first_of(":\r\n") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos)
      return "header \"" + name + "\" must not contain line breaks";
  return std::nullopt;
}

class CurlFetcher final : public Fetcher {
 public:
  CurlFetcher(CurlFetcherOptions options, std::shared_ptr<spdlog::logger> logger)
      : options_(std::move(options)), logger_(std::move(logger)) {
    init_curl_once();
    if (options_.concurrency == 0) options_.concurrency = 1;
    if (!logger_)
      logger_ = std::make_shared<spdlog::logger>("fetch",
                                                 std::make_shared<spdlog::sinks::null_sink_mt>());
    guard_.allow_private = options_.allow_private;
    guard_.allowed = options_.allowed_ranges;
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0) {
      close_fds();
      throw std::runtime_error("cannot create the fetch engine's epoll and eventfd");
    }
    epoll_event wake{};
    wake.events = EPOLLIN;
    wake.data.fd = wake_fd_;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake) != 0) {
      close_fds();
      throw std::runtime_error("cannot watch the fetch engine's eventfd");
    }
    multi_ = curl_multi_init();
    if (multi_ == nullptr) {
      close_fds();
      throw std::runtime_error("curl_multi_init failed");
    }
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &on_socket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, static_cast<void*>(this));
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &on_timer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, static_cast<void*>(this));
    const long limit = static_cast<long>(options_.concurrency);
    // Our queue bounds the transfers, so curl must not queue behind our back (a transfer
    // waiting for a per-host slot would burn its timeout); the cache keeps one idle
    // connection per possible transfer for reuse.
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, limit);
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, limit);
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    thread_ = std::thread([this] {
      name_this_thread("fetchd-fetch");
      run();
    });
  }

  ~CurlFetcher() override {
    stop(milliseconds(0));
    for (CURL* easy : idle_) curl_easy_cleanup(easy);
    curl_multi_cleanup(multi_);
    close_fds();
  }

  CurlFetcher(const CurlFetcher&) = delete;
  CurlFetcher& operator=(const CurlFetcher&) = delete;

  void fetch(FetchRequest request, Callback done) override {
    Pending pending{std::move(request), std::move(done)};
    bool accepted = false;
    bool was_empty = false;
    try {
      std::lock_guard lock(mutex_);
      if (!stopping_) {
        was_empty = queue_.empty();
        queue_.push_back(std::move(pending));  // strong guarantee: intact if it throws
        in_flight_.fetch_add(1);
        accepted = true;
      }
    } catch (const std::exception& e) {
      deliver(pending.done, make_error(FetchErrorKind::kNetwork,
                                       std::string("could not queue the request: ") + e.what()));
      return;
    }
    if (accepted) {
      // A queue that was not empty has a wake-up pending already, or waits for a free slot,
      // which the engine looks for after every completion.
      if (was_empty) wake();
      return;
    }
    // The engine thread is gone: the caller's thread is the only one left to answer.
    deliver(pending.done, make_error(FetchErrorKind::kShutdown, "the fetch engine is stopped"));
  }

  std::size_t in_flight() const override { return in_flight_.load(); }

  void stop(milliseconds grace) override {
    {
      std::lock_guard lock(mutex_);
      if (!stopping_) {
        stopping_ = true;
        deadline_ = SteadyClock::now() + std::max(grace, milliseconds(0));
      }
    }
    wake();
    // From a callback (the engine thread itself) the loop ends on its own; joining is for
    // the other threads, one at a time.
    if (std::this_thread::get_id() == engine_id_.load()) return;
    std::lock_guard join_lock(join_mutex_);
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    engine_id_ = std::this_thread::get_id();
    logger_->debug("fetch engine started (concurrency {})", options_.concurrency);
    bool shutting_down = false;
    SteadyClock::time_point deadline;
    while (true) {
      std::vector<Pending> incoming;
      std::vector<Pending> rejected;
      {
        std::lock_guard lock(mutex_);
        if (stopping_ && !shutting_down) {
          shutting_down = true;
          deadline = deadline_;
        }
        if (shutting_down) {
          std::move(queue_.begin(), queue_.end(), std::back_inserter(rejected));
          queue_.clear();
        } else {
          while (!queue_.empty() && active_.size() + incoming.size() < options_.concurrency) {
            incoming.push_back(std::move(queue_.front()));
            queue_.pop_front();
          }
        }
      }
      for (auto& pending : rejected)
        finish_unstarted(pending, make_error(FetchErrorKind::kShutdown,
                                             "the fetch engine stopped before the transfer "
                                             "started"));
      for (auto& pending : incoming) start(std::move(pending));

      const bool completed = collect_done();
      if (shutting_down && (active_.empty() || SteadyClock::now() >= deadline)) break;
      // After completions, queued requests may start at once.
      auto wait = completed ? milliseconds(0) : milliseconds(1000);
      if (timer_) {
        wait = std::min(wait, std::chrono::ceil<milliseconds>(std::max(*timer_ - SteadyClock::now(),
                                                                       SteadyClock::duration(0))));
      }
      if (shutting_down) {
        wait = std::clamp(std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now()),
                          milliseconds(0), wait);
      }
      poll_once(wait);
    }
    abort_active();
    logger_->debug("fetch engine stopped");
  }

  // Waits up to `wait` for sockets, the wake-up or curl's timer, and lets curl act on them.
  void poll_once(milliseconds wait) {
    std::array<epoll_event, 256> events{};
    const int ready = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                                 static_cast<int>(wait.count()));
    int running = 0;
    for (int i = 0; i < ready; ++i) {
      const epoll_event& event = events[static_cast<std::size_t>(i)];
      if (event.data.fd == wake_fd_) {
        std::uint64_t count = 0;
        (void)!read(wake_fd_, &count, sizeof count);
        continue;
      }
      int mask = 0;
      if (event.events & EPOLLIN) mask |= CURL_CSELECT_IN;
      if (event.events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
      if (event.events & (EPOLLERR | EPOLLHUP)) mask |= CURL_CSELECT_ERR;
      curl_multi_socket_action(multi_, event.data.fd, mask, &running);
    }
    if (timer_ && SteadyClock::now() >= *timer_) {
      timer_.reset();
      curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
    }
  }

  // curl says which sockets to watch for what (CURLMOPT_SOCKETFUNCTION).
  static int on_socket(CURL* /*easy*/, curl_socket_t socket, int what, void* self, void*) {
    const int epoll_fd = static_cast<CurlFetcher*>(self)->epoll_fd_;
    if (what == CURL_POLL_REMOVE) {
      // The socket may be closed already, which removed it from the set: nothing to undo.
      (void)epoll_ctl(epoll_fd, EPOLL_CTL_DEL, socket, nullptr);
      return 0;
    }
    epoll_event event{};
    event.events =
        ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    event.data.fd = socket;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, socket, &event) != 0 && errno == ENOENT) {
      (void)epoll_ctl(epoll_fd, EPOLL_CTL_ADD, socket, &event);
    }
    return 0;
  }

  // curl's single timer (CURLMOPT_TIMERFUNCTION): -1 cancels it, 0 means now.
  static int on_timer(CURLM* /*multi*/, long timeout_ms, void* self) {
    auto& timer = static_cast<CurlFetcher*>(self)->timer_;
    if (timeout_ms < 0) {
      timer.reset();
    } else {
      timer = SteadyClock::now() + milliseconds(timeout_ms);
    }
    return 0;
  }

  void wake() {
    const std::uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
  }

  void close_fds() {
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    epoll_fd_ = wake_fd_ = -1;
  }

  void finish_unstarted(Pending& pending, FetchError error) {
    in_flight_.fetch_sub(1);
    deliver(pending.done, std::move(error));
  }

  void start(Pending pending) {
    if (auto problem = check_request(pending.request)) {
      finish_unstarted(pending, make_error(FetchErrorKind::kInvalidRequest, std::move(*problem)));
      return;
    }
    CURL* easy = nullptr;
    try {
      if (!idle_.empty()) {
        easy = idle_.back();
        idle_.pop_back();
      } else {
        easy = curl_easy_init();
      }
      if (easy == nullptr) {
        finish_unstarted(pending, make_error(FetchErrorKind::kNetwork, "curl_easy_init failed"));
        return;
      }
      auto transfer = std::make_unique<Transfer>();
      transfer->request = std::move(pending.request);
      transfer->guard = &guard_;
      transfer->easy = easy;
      Transfer& started = *transfer;
      if (const CURLcode configured = configure(started); configured != CURLE_OK) {
        recycle(std::exchange(easy, nullptr), false);
        finish_unstarted(pending, make_error(FetchErrorKind::kInvalidRequest,
                                             std::string("curl refused the request: ") +
                                                 curl_easy_strerror(configured)));
        return;
      }
      active_.emplace(easy, std::move(transfer));
      if (const CURLMcode added = curl_multi_add_handle(multi_, easy); added != CURLM_OK) {
        active_.erase(easy);
        recycle(std::exchange(easy, nullptr), false);
        finish_unstarted(pending, make_error(FetchErrorKind::kNetwork,
                                             std::string("curl refused the transfer: ") +
                                                 curl_multi_strerror(added)));
        return;
      }
      // Last, so that `pending` still holds the callback on every failure path above.
      started.done = std::move(pending.done);
    } catch (const std::exception& e) {
      if (easy != nullptr && !active_.contains(easy)) recycle(easy, false);
      finish_unstarted(pending, make_error(FetchErrorKind::kNetwork,
                                           std::string("could not start: ") + e.what()));
    }
  }

  CURLcode configure(Transfer& transfer) {
    CURL* easy = transfer.easy;
    const FetchRequest& request = transfer.request;
    CURLcode rc = CURLE_OK;
    const auto set = [&](CURLoption option, auto value) {
      if (rc == CURLE_OK) rc = curl_easy_setopt(easy, option, value);
    };
    set(CURLOPT_URL, request.url.c_str());
    set(CURLOPT_PRIVATE, static_cast<void*>(&transfer));
    set(CURLOPT_ERRORBUFFER, transfer.error_buffer);
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_WRITEFUNCTION, &on_body);
    set(CURLOPT_WRITEDATA, static_cast<void*>(&transfer));
    set(CURLOPT_HEADERFUNCTION, &on_header);
    set(CURLOPT_HEADERDATA, static_cast<void*>(&transfer));
    set(CURLOPT_OPENSOCKETFUNCTION, &on_open_socket);
    set(CURLOPT_OPENSOCKETDATA, static_cast<void*>(&transfer));
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85.0
    set(CURLOPT_PROTOCOLS_STR, "http,https");
    set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    set(CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    set(CURLOPT_REDIR_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    set(CURLOPT_FOLLOWLOCATION, 1L);
    set(CURLOPT_MAXREDIRS, options_.max_redirects);
    set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    set(CURLOPT_ACCEPT_ENCODING, "");  // every decoding libcurl has: gzip, deflate, br, zstd
    set(CURLOPT_USERAGENT, options_.user_agent.c_str());
    set(CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
    if (options_.connect_timeout)
      set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout->count()));
    // No proxy from the environment: the guard must see the address really connected to.
    set(CURLOPT_PROXY, "");
    set(CURLOPT_TCP_KEEPALIVE, 1L);

    const std::string& method = request.method;
    const bool sends_body =
        !request.body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
    if (method == "HEAD") {
      set(CURLOPT_NOBODY, 1L);
    } else if (method == "POST") {
      set(CURLOPT_POST, 1L);
    } else if (method != "GET" || sends_body) {
      set(CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    if (sends_body && method != "HEAD") {
      set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      set(CURLOPT_POSTFIELDS, request.body.c_str());
    }

    bool has_expect = false;
    for (const auto& [name, value] : request.headers) {
      has_expect = has_expect || (name.size() == 6 && strncasecmp(name.c_str(), "Expect", 6) == 0);
      // "Name;" is curl's spelling of a header with an empty value ("Name:" would remove it).
      const std::string line = value.empty() ? name + ";" : name + ": " + value;
      curl_slist* next = curl_slist_append(transfer.header_list, line.c_str());
      if (next == nullptr) return CURLE_OUT_OF_MEMORY;
      transfer.header_list = next;
    }
    if (!has_expect && sends_body) {
      // No 100-continue round trip before large bodies.
      curl_slist* next = curl_slist_append(transfer.header_list, "Expect:");
      if (next == nullptr) return CURLE_OUT_OF_MEMORY;
      transfer.header_list = next;
    }
    if (transfer.header_list != nullptr) set(CURLOPT_HTTPHEADER, transfer.header_list);
    return rc;
  }

  // Hands each finished transfer's result to its callback; true if any finished.
  bool collect_done() {
    bool any = false;
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(multi_, &left)) {
      if (message->msg != CURLMSG_DONE) continue;
      const CURLcode code = message->data.result;
      auto node = active_.extract(message->easy_handle);
      if (node.empty()) continue;
      complete(std::move(node.mapped()), code);
      any = true;
    }
    return any;
  }

  void complete(std::unique_ptr<Transfer> transfer, CURLcode code) {
    FetchResult result = [&]() -> FetchResult {
      try {
        const FetchTimings timings = read_timings(transfer->easy);
        if (code != CURLE_OK) return tl::unexpected(map_error(*transfer, code, timings, options_));
        FetchResponse response;
        long status = 0;
        curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &status);
        response.status = static_cast<int>(status);
        char* effective = nullptr;
        curl_easy_getinfo(transfer->easy, CURLINFO_EFFECTIVE_URL, &effective);
        response.effective_url = effective != nullptr ? effective : transfer->request.url;
        response.headers = std::move(transfer->headers);
        response.body = std::move(transfer->body);
        response.timings = timings;
        return response;
      } catch (const std::exception& e) {
        return tl::unexpected(
            make_error(FetchErrorKind::kNetwork, std::string("could not finish: ") + e.what()));
      }
    }();
    recycle(transfer->easy, true);
    in_flight_.fetch_sub(1);
    deliver(transfer->done, std::move(result));
  }

  // Back to the free list: curl_easy_reset drops the options, while the multi handle keeps
  // the connections and the DNS cache for the next transfer.
  void recycle(CURL* easy, bool added) {
    if (added) curl_multi_remove_handle(multi_, easy);
    curl_easy_reset(easy);
    try {
      idle_.push_back(easy);
    } catch (const std::exception&) {
      curl_easy_cleanup(easy);
    }
  }

  void abort_active() {
    for (auto& [easy, transfer] : active_) {
      const FetchTimings timings = read_timings(easy);
      recycle(easy, true);
      in_flight_.fetch_sub(1);
      deliver(transfer->done,
              make_error(FetchErrorKind::kShutdown,
                         "the fetch engine stopped before the transfer finished", timings));
    }
    active_.clear();
  }

  void deliver(Callback& done, FetchError error) noexcept {
    deliver(done, FetchResult(tl::unexpected(std::move(error))));
  }

  void deliver(Callback& done, FetchResult result) noexcept {
    try {
      if (done) done(std::move(result));
    } catch (const std::exception& e) {
      logger_->error("fetch: a completion callback threw: {}", e.what());
    } catch (...) {
      logger_->error("fetch: a completion callback threw a non-exception");
    }
  }

  CurlFetcherOptions options_;
  std::shared_ptr<spdlog::logger> logger_;
  Guard guard_;
  CURLM* multi_ = nullptr;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: the callers' and stop()'s wake-up of the engine thread

  // Engine thread only (curl calls on_timer from within its calls on that thread).
  std::optional<SteadyClock::time_point> timer_;

  // Engine thread only.
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> active_;
  std::vector<CURL*> idle_;

  // Shared with the callers' threads.
  std::mutex mutex_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  SteadyClock::time_point deadline_;
  std::atomic<std::size_t> in_flight_{0};

  std::atomic<std::thread::id> engine_id_{};
  std::mutex join_mutex_;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Fetcher> make_curl_fetcher(CurlFetcherOptions options,
                                           std::shared_ptr<spdlog::logger> logger) {
  return std::make_unique<CurlFetcher>(std::move(options), std::move(logger));
}

}  // namespace fetchd
