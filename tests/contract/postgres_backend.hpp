// The PostgreSQL backend of the Store contract suite (compiled into contract_pg_tests only):
// one real server per test process, initdb'd into a temporary directory and started with
// pg_ctl on a free loopback port (as the `postgres` user when running as root, since postgres
// refuses root), a fresh database per test, the server stopped when the tests end.
#pragma once

#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "store/postgres/postgres_store.hpp"

// A named namespace (not an anonymous one): every test file of the executable must share the
// one server that postgres_server() starts.
namespace fetchd::pg_testing {

// The newest installed server binaries (Debian: /usr/lib/postgresql/<major>/bin), or "".
inline std::string postgres_bin_dir() {
  if (const char* dir = std::getenv("FETCHD_PG_BIN")) return dir;
  std::error_code ec;
  std::filesystem::path best;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const auto bin = entry.path() / "bin";
    if (std::filesystem::exists(bin / "pg_ctl") && bin > best) best = bin;
  }
  return best.string();
}

// A port the kernel just handed out on 127.0.0.1 (free, give or take a race).
inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

class PostgresServer : public ::testing::Environment {
 public:
  void SetUp() override {
    bin_ = postgres_bin_dir();
    if (bin_.empty()) {
      skip_reason_ = "PostgreSQL server binaries not found (apt-get install postgresql)";
      return;
    }
    char tmpl[] = "/tmp/fetchd-pg-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      error_ = "cannot create a temporary directory";
      return;
    }
    dir_ = tmpl;
    if (::geteuid() == 0) {
      // postgres refuses to run as root: the cluster belongs to the postgres user.
      const passwd* user = ::getpwnam("postgres");
      if (!user || ::chown(dir_.c_str(), user->pw_uid, user->pw_gid) != 0) {
        error_ = "running as root and there is no usable `postgres` user";
        return;
      }
      as_user_ = "runuser -u postgres -- ";
    }
    if (!sh(as_user_ + bin_ + "/initdb -D " + dir_ + "/data -U postgres -A trust -E UTF8 " +
            "--locale=C --no-sync > " + dir_ + "/initdb.log 2>&1")) {
      error_ = "initdb failed: " + read_file(dir_ + "/initdb.log");
      return;
    }
    for (int tries = 0; tries < 5 && port_ == 0; ++tries) {
      const int port = free_loopback_port();
      // -F: no fsync, the data is thrown away anyway.
      if (sh(as_user_ + bin_ + "/pg_ctl -D " + dir_ + "/data -l " + dir_ + "/server.log -w " +
             "-t 60 -o \"-k " + dir_ + " -h 127.0.0.1 -p " + std::to_string(port) +
             " -F\" start > /dev/null 2>&1")) {
        port_ = port;
      }
    }
    if (port_ == 0) error_ = "pg_ctl start failed: " + read_file(dir_ + "/server.log");
  }

  void TearDown() override {
    if (port_ != 0) {
      sh(as_user_ + bin_ + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop > /dev/null 2>&1");
      port_ = 0;
    }
    if (!dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }

  const std::string& skip_reason() const { return skip_reason_; }
  const std::string& error() const { return error_; }

  std::string url(const std::string& database) const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
  }

  // A new empty database; "" (and `error` filled) when it cannot be made.
  std::string create_database(std::string& error) {
    const std::string name = "t_" + std::to_string(++databases_);
    if (!admin("CREATE DATABASE " + name, error)) return {};
    return name;
  }

  void drop_database(const std::string& name) {
    std::string ignored;
    admin("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)", ignored);
  }

  // Runs `sql` on the maintenance database as the superuser; false (and `error`) on failure.
  bool admin(const std::string& sql, std::string& error) const {
    if (port_ == 0) {
      error = error_.empty() ? "the PostgreSQL server is not running" : error_;
      return false;
    }
    std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(url("postgres").c_str()),
                                                      &PQfinish);
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      error = PQerrorMessage(conn.get());
      return false;
    }
    PQsetNoticeProcessor(
        conn.get(), [](void*, const char*) {}, nullptr);  // "skipping" notices
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn.get(), sql.c_str()), &PQclear);
    const auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      error = PQresultErrorMessage(result.get());
      return false;
    }
    return true;
  }

 private:
  static bool sh(const std::string& command) { return std::system(command.c_str()) == 0; }

  static std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::string bin_;
  std::string dir_;
  std::string as_user_;
  std::string skip_reason_;
  std::string error_;
  int port_ = 0;
  std::atomic<int> databases_{0};
};

// The process's server, registered with GoogleTest before main runs so that it starts once
// before the first test and stops after the last.
inline PostgresServer& postgres_server() {
  static PostgresServer* const server =
      static_cast<PostgresServer*>(::testing::AddGlobalTestEnvironment(new PostgresServer));
  return *server;
}
[[maybe_unused]] inline const bool kPostgresServerRegistered = (postgres_server(), true);

struct PostgresBackend {
  static constexpr const char* kName = "postgres";
  static constexpr bool kPersistent = true;

  PostgresBackend() {
    if (postgres_server().skip_reason().empty())
      database = postgres_server().create_database(error);
  }
  PostgresBackend(const PostgresBackend&) = delete;
  PostgresBackend& operator=(const PostgresBackend&) = delete;
  ~PostgresBackend() {
    if (!database.empty()) postgres_server().drop_database(database);
  }

  std::string skip_reason() const { return postgres_server().skip_reason(); }
  Result<std::unique_ptr<Store>> open() {
    if (database.empty()) return fail(ErrorCode::kUnavailable, "no test database: " + error);
    return open_postgres_store(postgres_server().url(database));
  }

  std::string database;
  std::string error;
};

}  // namespace fetchd::pg_testing
