// A main() for the fuzz targets without libFuzzer: feeds every file of the directories (or the
// files) on the command line to LLVMFuzzerTestOneInput, in name order, so that the GCC builds
// replay the committed corpora and regression inputs as tests. A crash or a sanitizer report
// fails the test, and names the input; a missing directory is an error (a typo would otherwise
// pass silently).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define FETCHD_REPLAY_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define FETCHD_REPLAY_SANITIZED 1
#endif
#endif
#ifdef FETCHD_REPLAY_SANITIZED
#include <sanitizer/common_interface_defs.h>
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

#ifdef FETCHD_REPLAY_SANITIZED
// GCC links UBSan as a runtime of its own, which ignores ASan's death callback: an abort makes
// its reports go through the signal handler instead (and with a stack).
extern "C" const char* __ubsan_default_options() {
  return "print_stacktrace=1:abort_on_error=1";
}
#endif

namespace {

namespace fs = std::filesystem;

// The input being replayed, for the last words of a crash (a sanitizer report or a signal).
// Written before each input, read only when dying.
char current_input[4096] = "";

void name_current_input() {
  constexpr char kPrefix[] = "\nfuzz replay: the failing input is ";
  [[maybe_unused]] auto r1 = ::write(STDERR_FILENO, kPrefix, sizeof kPrefix - 1);
  [[maybe_unused]] auto r2 = ::write(STDERR_FILENO, current_input, std::strlen(current_input));
  [[maybe_unused]] auto r3 = ::write(STDERR_FILENO, "\n", 1);
}

extern "C" void on_fatal_signal(int signal) {
  name_current_input();
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

void install_crash_reporting() {
#ifdef FETCHD_REPLAY_SANITIZED
  __sanitizer_set_death_callback(name_current_input);
#endif
  for (int signal : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL})
    std::signal(signal, on_fatal_signal);
}

// Dot files (.gitkeep) and READMEs sit beside the inputs; they are not inputs.
bool is_input(const fs::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name.front() != '.' && !name.starts_with("README");
}

bool replay_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  const std::vector<char> bytes{std::istreambuf_iterator<char>(in),
                                std::istreambuf_iterator<char>()};
  std::snprintf(current_input, sizeof current_input, "%s (%zu bytes)", path.c_str(), bytes.size());
  // A copy of exactly the input's size, so that ASan sees a read past its end; never null,
  // as with libFuzzer.
  const auto data = std::make_unique<std::uint8_t[]>(bytes.size());
  std::copy(bytes.begin(), bytes.end(), data.get());
  LLVMFuzzerTestOneInput(data.get(), bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  install_crash_reporting();
  const auto started = std::chrono::steady_clock::now();
  std::size_t count = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_regular_file(arg, ec)) {
      ok = replay_file(arg) && ok;
      ++count;
      continue;
    }
    if (!fs::is_directory(arg, ec)) {
      std::fprintf(stderr, "no such file or directory: %s\n", arg.c_str());
      ok = false;
      continue;
    }
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(arg, ec))
      if (entry.is_regular_file() && is_input(entry.path())) files.push_back(entry.path());
    if (ec) {
      std::fprintf(stderr, "cannot list %s: %s\n", arg.c_str(), ec.message().c_str());
      ok = false;
      continue;
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      ok = replay_file(file) && ok;
      ++count;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("replayed %zu inputs in %.1f s\n", count, seconds);
  return ok ? 0 : 1;
}
