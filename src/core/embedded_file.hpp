// A file compiled into the binary (see cmake/embed.cmake): migrations, Swagger UI, demo feeds.
#pragma once

#include <string_view>

namespace fetchd {

struct EmbeddedFile {
  std::string_view name;  // path relative to the embedded folder, e.g. "0001_init.sql"
  std::string_view data;
};

}  // namespace fetchd
