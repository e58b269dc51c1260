// The fetch engine's contract: an HTTP request in, a response or an error out, as a value —
// never an exception. curl_fetcher.cpp implements it with one libcurl multi handle driven by
// its own thread; curl's headers stay inside that file.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

namespace fetchd {

struct FetchRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{30'000};
  std::uint64_t max_response_bytes = 10 * 1024 * 1024;  // decoded bytes
};

// dns, connect and tls: how long each phase took (0 on a reused connection); first_byte and
// total: since the fetch started. After redirects, curl adds up the requests' times.
struct FetchTimings {
  std::chrono::microseconds dns{0};
  std::chrono::microseconds connect{0};
  std::chrono::microseconds tls{0};
  std::chrono::microseconds first_byte{0};
  std::chrono::microseconds total{0};
};

struct FetchResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;                                          // decoded (gzip etc. undone)
  std::string effective_url;                                 // after redirects
  FetchTimings timings;
};

enum class FetchErrorKind {
  kInvalidRequest,    // bad URL, unsupported scheme
  kDns,               // name did not resolve
  kConnect,           // refused, unreachable
  kTls,               // handshake or certificate
  kTimeout,           // the run's time limit
  kTooLarge,          // response over max_response_bytes
  kTooManyRedirects,  // over 5
  kBlocked,           // refused by the address guard (private addresses)
  kNetwork,           // reset, truncated, protocol error
  kShutdown,          // the engine stopped before the transfer finished
};

std::string_view to_string(FetchErrorKind kind);

struct FetchError {
  FetchErrorKind kind = FetchErrorKind::kNetwork;
  std::string message;  // precise, for a person: "response larger than 10485760 bytes"
  FetchTimings timings;
};

using FetchResult = tl::expected<FetchResponse, FetchError>;

class Fetcher {
 public:
  using Callback = std::function<void(FetchResult)>;
  virtual ~Fetcher() = default;
  // Starts the transfer; `done` is called exactly once, on the engine's thread, with the
  // result (also when the engine is stopped: kShutdown; once stop() has been called, at once
  // on the caller's thread). Must not block.
  virtual void fetch(FetchRequest request, Callback done) = 0;
  // Requests accepted and not yet answered (transfers running and waiting for a slot).
  virtual std::size_t in_flight() const = 0;
  // Finishes transfers for up to `grace`, fails the rest with kShutdown, joins the thread.
  virtual void stop(std::chrono::milliseconds grace) = 0;
};

}  // namespace fetchd
