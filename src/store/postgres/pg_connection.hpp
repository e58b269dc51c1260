// RAII over libpq for the PostgreSQL store's private use: a connection (PGconn*) with its
// prepared statements (PQprepare once per connection, PQexecPrepared after), a result with
// typed accessors, text-format parameters, and the translation of SQLSTATEs into ErrorCodes.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.hpp"
#include "core/time.hpp"

namespace fetchd::pg {

struct ConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using ConnHandle = std::unique_ptr<PGconn, ConnCloser>;

struct ResultClearer {
  void operator()(PGresult* result) const { PQclear(result); }
};
using ResultHandle = std::unique_ptr<PGresult, ResultClearer>;

inline bool is_unique_violation(std::string_view sqlstate) {
  return sqlstate == "23505";
}
inline bool is_foreign_key_violation(std::string_view sqlstate) {
  return sqlstate == "23503";
}
// Class 08 (connection exception), the server shutting down or starting, or a transaction the
// server cancelled for concurrency's sake: the database, not the request, is the problem.
bool is_unavailable(std::string_view sqlstate);

// Parameters in text format, in order ($1, $2, ...); nullopt is SQL NULL.
class Params {
 public:
  Params& add(std::int64_t value);
  Params& add(int value) { return add(static_cast<std::int64_t>(value)); }
  Params& add(bool value);
  Params& add(TimePoint value) { return add(to_unix_ms(value)); }
  Params& add(std::string value);
  Params& add(const char* value) { return add(std::string(value)); }
  Params& add(std::string_view value) { return add(std::string(value)); }
  template <typename T>
  Params& add(const std::optional<T>& value) {
    if (value) return add(*value);
    values_.emplace_back(std::nullopt);
    return *this;
  }

  int size() const { return static_cast<int>(values_.size()); }
  std::vector<const char*> pointers() const;

 private:
  std::vector<std::optional<std::string>> values_;
};

// A one-dimensional array in text format, such as {1,NULL,3} or {"a","b\"c"}, for a parameter
// the statement casts ($1::bigint[], $2::text[]): one element per add, strings quoted and
// escaped, nullopt as NULL. Params::add takes text().
class ArrayParam {
 public:
  ArrayParam& add(std::int64_t value);
  ArrayParam& add(int value) { return add(static_cast<std::int64_t>(value)); }
  ArrayParam& add(bool value);
  ArrayParam& add(TimePoint value) { return add(to_unix_ms(value)); }
  ArrayParam& add(std::string_view value);
  template <typename T>
  ArrayParam& add(const std::optional<T>& value) {
    if (value) return add(*value);
    next();
    text_ += "NULL";
    return *this;
  }
  std::string text() const { return text_ + '}'; }

 private:
  void next() {
    if (text_.size() > 1) text_ += ',';
  }
  std::string text_ = "{";
};

template <typename... Args>
Params params(const Args&... args) {
  Params p;
  (p.add(args), ...);
  return p;
}

// A query's rows, read as text and converted.
class Rows {
 public:
  explicit Rows(ResultHandle result) : result_(std::move(result)) {}

  int size() const { return PQntuples(result_.get()); }
  bool empty() const { return size() == 0; }
  // Rows changed by an INSERT/UPDATE/DELETE.
  std::int64_t affected() const;

  bool is_null(int row, int col) const { return PQgetisnull(result_.get(), row, col) != 0; }
  std::int64_t int64(int row, int col) const;
  std::optional<std::int64_t> opt_int64(int row, int col) const;
  std::string text(int row, int col) const;
  std::optional<std::string> opt_text(int row, int col) const;
  bool boolean(int row, int col) const;
  TimePoint time(int row, int col) const { return from_unix_ms(int64(row, col)); }
  std::optional<TimePoint> opt_time(int row, int col) const;

 private:
  ResultHandle result_;
};

// One libpq connection. Not thread-safe: the pool hands it to one caller at a time.
class Connection {
 public:
  // kUnavailable with libpq's message when the server cannot be reached.
  static Result<std::unique_ptr<Connection>> open(const std::string& conninfo);

  // A parameterised statement, prepared on first use and reused after.
  Result<Rows> exec(const std::string& sql, const Params& args = {});
  // The same statement once per element of `each`, pipelined: sent together and answered
  // together, one round trip for many calls instead of one each. The rows of every call, in
  // order; the first error fails the whole (later calls are not run).
  Result<std::vector<Rows>> exec_each(const std::string& sql, const std::vector<Params>& each);
  // One or more statements without parameters (migrations, BEGIN/COMMIT/ROLLBACK).
  Result<Rows> exec_script(const std::string& sql);

  bool healthy() const { return PQstatus(conn_.get()) == CONNECTION_OK; }
  // Reconnects (prepared statements are gone with the old session). kUnavailable on failure.
  Result<void> reset();
  // The SQLSTATE of the last failed statement ("" after a success or a lost connection).
  const std::string& last_sqlstate() const { return last_sqlstate_; }

 private:
  explicit Connection(ConnHandle conn) : conn_(std::move(conn)) {}
  Result<Rows> check(ResultHandle result, std::string_view sql);
  // The statement's name, preparing it on first use.
  Result<const std::string*> prepare(const std::string& sql);
  Result<std::vector<Rows>> pipeline(const std::string& name, const std::string& sql,
                                     const std::vector<Params>& each, std::size_t begin,
                                     std::size_t end);

  ConnHandle conn_;
  std::unordered_map<std::string, std::string> prepared_;  // sql -> statement name
  std::string last_sqlstate_;
};

// BEGIN on construction; ROLLBACK on destruction unless committed.
class Transaction {
 public:
  static Result<Transaction> begin(Connection& conn);
  Transaction(Transaction&& other) noexcept : conn_(other.conn_) { other.conn_ = nullptr; }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Result<void> commit();

 private:
  explicit Transaction(Connection& conn) : conn_(&conn) {}
  Connection* conn_;
};

}  // namespace fetchd::pg
