// A real redis-server for the tests: started on a free loopback port without persistence,
// stoppable and restartable on the same port (fault tests), flushed between tests.
#pragma once

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;

namespace fetchd::test {

class RedisServer {
 public:
  RedisServer() = default;
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  ~RedisServer() { stop(); }

  // Empty when redis-server is not installed (the tests then skip).
  static std::string binary() {
    for (const char* path : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"}) {
      if (access(path, X_OK) == 0) return path;
    }
    return {};
  }

  bool start() {
    if (pid_ > 0) return true;
    const std::string bin = binary();
    if (bin.empty()) return false;
    if (port_ == 0) port_ = free_port();
    std::vector<std::string> args{
        bin,      "--port",    std::to_string(port_), "--save", "",           "--appendonly", "no",
        "--bind", "127.0.0.1", "--daemonize",         "no",     "--loglevel", "warning"};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    // Its start-up banner and warnings would bury the test output.
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    const int spawned = posix_spawn(&pid_, bin.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
      pid_ = -1;
      return false;
    }
    for (int i = 0; i < 200; ++i) {  // up to 2 s
      if (ping()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop();
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  std::string url(int db = 0) const {
    return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
  }

  // Runs one command on a fresh connection; returns the reply's text or integer as text.
  std::string command(const std::vector<std::string>& args) const {
    redisContext* context = redisConnect("127.0.0.1", port_);
    if (context == nullptr) return "<no context>";
    std::string out = "<no reply>";
    if (context->err == 0) {
      std::vector<const char*> argv;
      std::vector<size_t> lengths;
      for (const auto& arg : args) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
      }
      auto* reply = static_cast<redisReply*>(
          redisCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data()));
      if (reply != nullptr) {
        if (reply->type == REDIS_REPLY_INTEGER) {
          out = std::to_string(reply->integer);
        } else if (reply->str != nullptr) {
          out = std::string(reply->str, reply->len);
        } else {
          out = "<" + std::to_string(reply->type) + ">";
        }
        freeReplyObject(reply);
      }
    }
    redisFree(context);
    return out;
  }

  bool ping() const { return command({"PING"}) == "PONG"; }
  bool flush() const { return command({"FLUSHALL"}) == "OK"; }

 private:
  static int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    int port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
  }

  pid_t pid_ = -1;
  int port_ = 0;
};

// The one server of a test executable, shared by its tests (each test flushes it first).
inline RedisServer& redis_server() {
  static RedisServer server;
  return server;
}

class RedisEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { redis_server().start(); }
  void TearDown() override { redis_server().stop(); }
};

}  // namespace fetchd::test
