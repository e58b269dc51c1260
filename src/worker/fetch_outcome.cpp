// classify_fetch and its helpers: the error texts of failed runs.
#include "worker/fetch_outcome.hpp"

#include <openssl/evp.h>
#include <sodium.h>

#include "worker/json_check.hpp"

namespace fetchd {

std::string sha256_hex(std::string_view data) {
  // OpenSSL's SHA-256 uses the CPU's SHA extensions where there are some: four times
  // libsodium's speed on a 67 KB feed (bench/micro/hash_bench.cpp), the same digest.
  unsigned char digest[crypto_hash_sha256_BYTES];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1 ||
      length != sizeof digest) {
    crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  }
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return std::string(hex, crypto_hash_sha256_BYTES * 2);
}

FetchOutcome classify_fetch(FetchResult result, std::chrono::milliseconds timeout,
                            std::uint64_t max_response_bytes) {
  FetchOutcome outcome;
  if (!result) {
    const FetchError& error = result.error();
    switch (error.kind) {
      case FetchErrorKind::kTimeout:
        outcome.status = JobStatus::kTimedOut;
        outcome.error = "timed out after " + std::to_string(timeout.count()) + " ms";
        break;
      case FetchErrorKind::kTooLarge:
        outcome.error = "response larger than " + std::to_string(max_response_bytes) + " bytes";
        break;
      case FetchErrorKind::kShutdown:
        outcome.interrupted = true;
        outcome.error = "the fetch engine stopped before the transfer finished";
        break;
      default:
        outcome.error = error.message.empty() ? std::string(to_string(error.kind)) : error.message;
        break;
    }
    return outcome;
  }

  FetchResponse& response = *result;
  outcome.http_status = response.status;
  outcome.response_bytes = static_cast<std::int64_t>(response.body.size());
  if (response.status >= 400) {
    std::string text = "HTTP " + std::to_string(response.status);
    if (auto reason = http_reason_phrase(response.status); !reason.empty()) {
      text += ' ';
      text += reason;
    }
    outcome.error = std::move(text);
    return outcome;
  }
  JsonCheck check = check_json(response.body);
  if (!check.ok) {
    outcome.error = std::move(check.error);
    return outcome;
  }
  outcome.status = JobStatus::kSucceeded;
  outcome.records = check.records;
  outcome.content_hash = sha256_hex(response.body);
  outcome.body = std::move(response.body);
  return outcome;
}

}  // namespace fetchd
