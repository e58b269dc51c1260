// What a fetch result means for the run (engine.md §4): succeeded with a JSON document, or
// failed / timed out with an error text that says precisely why. Pure functions, so that
// every error text is tested without threads or a network.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/http_reason.hpp"
#include "core/job.hpp"
#include "fetch/fetcher.hpp"

namespace fetchd {

struct FetchOutcome {
  JobStatus status = JobStatus::kFailed;  // kSucceeded, kFailed or kTimedOut
  // The fetch engine stopped before the transfer finished (kShutdown): not the task's fault.
  // Such a run is put back in the queue, not recorded.
  bool interrupted = false;
  std::optional<int> http_status;
  std::optional<std::string> error;
  std::optional<std::int64_t> response_bytes;
  std::optional<std::int64_t> records;
  std::optional<std::string> body;          // the JSON document, on success only
  std::optional<std::string> content_hash;  // hex SHA-256 of body, on success only
};

// `timeout` and `max_response_bytes` are the request's, for the error texts
// ("timed out after 2000 ms", "response larger than 10485760 bytes"). HTTP >= 400 fails with
// "HTTP 404 Not Found"; a body that is not JSON fails with the parser's message and offset;
// other fetch errors keep the fetch engine's (curl's) message.
FetchOutcome classify_fetch(FetchResult result, std::chrono::milliseconds timeout,
                            std::uint64_t max_response_bytes);

// Lower-case hex SHA-256: OpenSSL's, libsodium's should OpenSSL fail.
std::string sha256_hex(std::string_view data);

}  // namespace fetchd
