// Fuzz target: the config loader (config/loader.hpp) on the input as the TOML file given with
// --config. load_config reads a path, so the input is written to a private temporary file
// first; the environment is an empty one. Property: whatever the file holds, the answer is a
// Config or one kInvalid line naming the problem, never an exception or a crash.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

#include "config/loader.hpp"
#include "fuzz_check.hpp"

namespace {

// The file the inputs are written to, removed when the process exits normally.
class ScratchFile {
 public:
  ScratchFile() {
    const char* dir = std::getenv("TMPDIR");
    std::string pattern = std::string(dir && *dir ? dir : "/tmp") + "/fetchd-fuzz-XXXXXX.toml";
    const int fd = ::mkstemps(pattern.data(), 5);
    if (fd < 0) throw std::runtime_error("cannot create a temporary file in " + pattern);
    ::close(fd);
    path_ = pattern;
  }
  ~ScratchFile() { std::remove(path_.c_str()); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  const std::string& write(std::string_view text) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot write " + path_);
    const bool written = text.empty() || std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !written) throw std::runtime_error("cannot write " + path_);
    return path_;
  }

 private:
  std::string path_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static ScratchFile scratch;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  fetchd::ConfigSources sources;
  sources.config_file = scratch.write(input);
  sources.getenv = [](const char*) -> const char* { return nullptr; };
  const auto config = fetchd::load_config(sources);
  if (!config) {
    const auto& error = config.error();
    FUZZ_CHECK(error.code == fetchd::ErrorCode::kInvalid, "an error other than kInvalid", input);
    FUZZ_CHECK(!error.message.empty(), "an error without a message", input);
    FUZZ_CHECK(error.message.find('\n') == std::string::npos, "a message of several lines", input);
  }
  return 0;
}
