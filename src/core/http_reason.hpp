// The reason phrases of HTTP status codes (RFC 9110), for the API's problem titles and the
// error texts of failed runs.
#pragma once

#include <string_view>

namespace fetchd {

// "Not Found" for 404; "" for a code without a registered phrase.
std::string_view http_reason_phrase(int status);

}  // namespace fetchd
