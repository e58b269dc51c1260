#include "fetch/fetcher.hpp"

namespace fetchd {

std::string_view to_string(FetchErrorKind kind) {
  switch (kind) {
    case FetchErrorKind::kInvalidRequest:
      return "invalid_request";
    case FetchErrorKind::kDns:
      return "dns";
    case FetchErrorKind::kConnect:
      return "connect";
    case FetchErrorKind::kTls:
      return "tls";
    case FetchErrorKind::kTimeout:
      return "timeout";
    case FetchErrorKind::kTooLarge:
      return "too_large";
    case FetchErrorKind::kTooManyRedirects:
      return "too_many_redirects";
    case FetchErrorKind::kBlocked:
      return "blocked";
    case FetchErrorKind::kNetwork:
      return "network";
    case FetchErrorKind::kShutdown:
      return "shutdown";
  }
  return "network";
}

}  // namespace fetchd
