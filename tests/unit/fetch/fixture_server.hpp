// Runs tests/fixtures/fixture_server.py as a child process for the fetcher's tests: waits for
// its "READY <port>" line and stops it on destruction (closing its stdin ends it even if this
// process dies first, thanks to --exit-on-eof).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

extern char** environ;

namespace fetchd::testing {

class FixtureServer {
 public:
  FixtureServer() {
    int out[2];
    int in[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    const std::string script = std::string(FETCHD_SOURCE_DIR) + "/tests/fixtures/fixture_server.py";
    const std::string fixtures = std::string(FETCHD_SOURCE_DIR) + "/../shared/fixtures";
    const char* argv[] = {"python3",    script.c_str(),   "--port",        "0",
                          "--fixtures", fixtures.c_str(), "--exit-on-eof", nullptr};
    const int spawned =
        posix_spawnp(&pid_, "python3", &actions, nullptr, const_cast<char* const*>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    stdin_fd_ = in[1];
    if (spawned != 0) {
      close(out[0]);
      throw std::runtime_error("could not start python3");
    }
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd fd{out[0], POLLIN, 0};
      if (poll(&fd, 1, 200) <= 0) continue;
      char buffer[256];
      const ssize_t n = read(out[0], buffer, sizeof buffer);
      if (n <= 0) break;
      line.append(buffer, static_cast<std::size_t>(n));
    }
    close(out[0]);
    if (!line.starts_with("READY ")) {
      stop();
      throw std::runtime_error("fixture server did not start: '" + line + "'");
    }
    port_ = std::stoi(line.substr(6));
  }

  ~FixtureServer() { stop(); }

  FixtureServer(const FixtureServer&) = delete;
  FixtureServer& operator=(const FixtureServer&) = delete;

  int port() const { return port_; }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

 private:
  void stop() {
    if (stdin_fd_ >= 0) close(stdin_fd_);
    stdin_fd_ = -1;
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int port_ = 0;
};

}  // namespace fetchd::testing
