// Identifiers of the domain's rows.
#pragma once

#include <cstdint>

namespace fetchd {

using UserId = std::int64_t;
using TaskId = std::int64_t;
using JobId = std::int64_t;
using DataId = std::int64_t;

}  // namespace fetchd
