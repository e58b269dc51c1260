// The libcurl implementation of Fetcher: one multi handle driven by one engine thread,
// connection reuse, HTTP/1.1 and HTTP/2, transparent decoding, the address guard, the body
// cap. Only this header's factory is public; curl's own headers stay in curl_fetcher.cpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "core/address_guard.hpp"
#include "fetch/fetcher.hpp"

namespace fetchd {

struct CurlFetcherOptions {
  // Transfers at once; more wait in the engine's queue (their timeout starts when they start).
  std::size_t concurrency = 512;
  std::string user_agent = "fetchd/" FETCHD_VERSION;
  // Allows loopback, private, link-local… addresses (see address_guard.hpp); off by default
  // so that a task cannot reach the machine's or the LAN's services.
  bool allow_private = false;
  // Ranges exempt from the guard while allow_private is off (fetch.allow_cidrs).
  std::vector<IpRange> allowed_ranges;
  long max_redirects = 5;
  // Limit on establishing a connection (TCP + TLS); unset: only the request's timeout applies.
  std::optional<std::chrono::milliseconds> connect_timeout;
};

// Starts the engine thread. Throws std::runtime_error only if libcurl cannot be initialised
// (a start-up failure); a null logger means no logging.
std::unique_ptr<Fetcher> make_curl_fetcher(CurlFetcherOptions options,
                                           std::shared_ptr<spdlog::logger> logger);

}  // namespace fetchd
