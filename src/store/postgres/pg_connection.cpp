// libpq wrappers of the PostgreSQL store: connection, prepared statements, results, errors.

#include "store/postgres/pg_connection.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace fetchd::pg {

namespace {

std::string trimmed(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::int64_t parse_int64(const char* text) {
  std::int64_t value = 0;
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || ptr != end) {
    throw std::runtime_error(std::string("not an integer in a result: ") + text);
  }
  return value;
}

}  // namespace

bool is_unavailable(std::string_view sqlstate) {
  // 42P01/42883 (no such table, no such function): the schema is older than this binary, as
  // when a process runs with --no-migrate before `fetchd db migrate`. Waiting for the
  // migration loses nothing; failing would drop the records of finished runs for good.
  return sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" ||
         sqlstate == "57P03" || sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "53300" ||
         sqlstate == "42P01" || sqlstate == "42883";
}

Params& Params::add(std::int64_t value) {
  values_.emplace_back(std::to_string(value));
  return *this;
}

Params& Params::add(bool value) {
  values_.emplace_back(value ? "true" : "false");
  return *this;
}

Params& Params::add(std::string value) {
  values_.emplace_back(std::move(value));
  return *this;
}

ArrayParam& ArrayParam::add(std::int64_t value) {
  next();
  text_ += std::to_string(value);
  return *this;
}

ArrayParam& ArrayParam::add(bool value) {
  next();
  text_ += value ? "true" : "false";
  return *this;
}

ArrayParam& ArrayParam::add(std::string_view value) {
  // Inside double quotes only the quote and the backslash are special; braces, commas, spaces
  // and the word NULL are then plain text.
  next();
  text_ += '"';
  for (const char c : value) {
    if (c == '"' || c == '\\') text_ += '\\';
    text_ += c;
  }
  text_ += '"';
  return *this;
}

std::vector<const char*> Params::pointers() const {
  std::vector<const char*> out;
  out.reserve(values_.size());
  for (const auto& value : values_) out.push_back(value ? value->c_str() : nullptr);
  return out;
}

std::int64_t Rows::affected() const {
  const char* text = PQcmdTuples(result_.get());
  return text && *text ? parse_int64(text) : 0;
}

std::int64_t Rows::int64(int row, int col) const {
  return parse_int64(PQgetvalue(result_.get(), row, col));
}

std::optional<std::int64_t> Rows::opt_int64(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return int64(row, col);
}

std::string Rows::text(int row, int col) const {
  return std::string(PQgetvalue(result_.get(), row, col),
                     static_cast<std::size_t>(PQgetlength(result_.get(), row, col)));
}

std::optional<std::string> Rows::opt_text(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return text(row, col);
}

bool Rows::boolean(int row, int col) const {
  return PQgetvalue(result_.get(), row, col)[0] == 't';
}

std::optional<TimePoint> Rows::opt_time(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return time(row, col);
}

Result<std::unique_ptr<Connection>> Connection::open(const std::string& conninfo) {
  ConnHandle conn(PQconnectdb(conninfo.c_str()));
  if (!conn) return fail(ErrorCode::kUnavailable, "cannot allocate a PostgreSQL connection");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return fail(ErrorCode::kUnavailable,
                "cannot connect to PostgreSQL: " + trimmed(PQerrorMessage(conn.get())));
  }
  // Notices (e.g. "relation already exists, skipping") are not errors; keep them off stderr.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Connection>(new Connection(std::move(conn)));
}

Result<void> Connection::reset() {
  prepared_.clear();
  PQreset(conn_.get());
  if (!healthy()) {
    return fail(ErrorCode::kUnavailable,
                "cannot reconnect to PostgreSQL: " + trimmed(PQerrorMessage(conn_.get())));
  }
  return {};
}

Result<Rows> Connection::check(ResultHandle result, std::string_view sql) {
  const auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    last_sqlstate_.clear();
    return Rows(std::move(result));
  }
  const char* state = result ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
  last_sqlstate_ = state ? state : "";
  const std::string message =
      trimmed(result ? PQresultErrorMessage(result.get()) : PQerrorMessage(conn_.get()));
  const std::string internal =
      message + " (SQLSTATE " + last_sqlstate_ + ") in: " + std::string(sql.substr(0, 200));
  if (!healthy() || is_unavailable(last_sqlstate_)) {
    return fail(ErrorCode::kUnavailable, "the database is unavailable", internal);
  }
  return fail(ErrorCode::kInternal, "database error", internal);
}

Result<const std::string*> Connection::prepare(const std::string& sql) {
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = "s" + std::to_string(prepared_.size());
    ResultHandle prepared(PQprepare(conn_.get(), name.c_str(), sql.c_str(), 0, nullptr));
    if (auto done = check(std::move(prepared), sql); !done) return tl::unexpected(done.error());
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  return &it->second;
}

Result<Rows> Connection::exec(const std::string& sql, const Params& args) {
  auto name = prepare(sql);
  if (!name) return tl::unexpected(name.error());
  const auto values = args.pointers();
  ResultHandle result(PQexecPrepared(conn_.get(), (*name)->c_str(), args.size(),
                                     values.empty() ? nullptr : values.data(), nullptr, nullptr,
                                     0));
  return check(std::move(result), sql);
}

Result<std::vector<Rows>> Connection::exec_each(const std::string& sql,
                                                const std::vector<Params>& each) {
  // Pipelines of a bounded size: a blocking connection that sends without reading could fill
  // both sockets' buffers (the server's answers, our calls) and wait on itself.
  constexpr std::size_t kPipelineDepth = 128;
  auto name = prepare(sql);
  if (!name) return tl::unexpected(name.error());
  std::vector<Rows> rows;
  rows.reserve(each.size());
  for (std::size_t begin = 0; begin < each.size(); begin += kPipelineDepth) {
    auto part = pipeline(**name, sql, each, begin, std::min(each.size(), begin + kPipelineDepth));
    if (!part) return tl::unexpected(part.error());
    for (auto& one : *part) rows.push_back(std::move(one));
  }
  return rows;
}

Result<std::vector<Rows>> Connection::pipeline(const std::string& name, const std::string& sql,
                                               const std::vector<Params>& each, std::size_t begin,
                                               std::size_t end) {
  PGconn* conn = conn_.get();
  auto lost = [&](const char* what) -> Result<std::vector<Rows>> {
    const std::string message = trimmed(PQerrorMessage(conn));
    // A connection left mid-pipeline cannot run anything else: start it afresh (a broken one
    // is reset by the store's pool before its next use).
    if (PQstatus(conn) == CONNECTION_OK) {
      PQreset(conn);
      prepared_.clear();
    }
    return fail(ErrorCode::kUnavailable, "the database is unavailable",
                std::string(what) + ": " + message + " in: " + sql.substr(0, 200));
  };
  if (PQenterPipelineMode(conn) != 1) return lost("cannot enter pipeline mode");
  for (std::size_t i = begin; i < end; ++i) {
    const auto values = each[i].pointers();
    if (PQsendQueryPrepared(conn, name.c_str(), each[i].size(),
                            values.empty() ? nullptr : values.data(), nullptr, nullptr, 0) != 1) {
      return lost("cannot send a pipelined statement");
    }
  }
  if (PQpipelineSync(conn) != 1) return lost("cannot end a pipeline");
  // Each call answers with its result and a null; an error makes every later call answer
  // PGRES_PIPELINE_ABORTED; the sync point answers last.
  std::vector<Rows> rows;
  rows.reserve(end - begin);
  std::optional<Error> first_error;
  bool after_null = false;
  for (;;) {
    ResultHandle result(PQgetResult(conn));
    if (!result) {
      // One null ends a call's results; two in a row mean nothing more is coming.
      if (after_null || PQstatus(conn) != CONNECTION_OK) {
        return lost("the connection was lost in a pipeline");
      }
      after_null = true;
      continue;
    }
    after_null = false;
    const auto status = PQresultStatus(result.get());
    if (status == PGRES_PIPELINE_SYNC) break;
    if (status == PGRES_PIPELINE_ABORTED) continue;
    auto checked = check(std::move(result), sql);
    if (!checked) {
      if (!first_error) first_error = checked.error();
      continue;
    }
    rows.push_back(std::move(*checked));
  }
  if (PQexitPipelineMode(conn) != 1) return lost("cannot leave pipeline mode");
  if (first_error) return tl::unexpected(*first_error);
  if (rows.size() != end - begin) {
    return fail(ErrorCode::kInternal, "database error",
                "a pipeline of " + std::to_string(end - begin) + " calls answered " +
                    std::to_string(rows.size()) + " in: " + sql.substr(0, 200));
  }
  return rows;
}

Result<Rows> Connection::exec_script(const std::string& sql) {
  return check(ResultHandle(PQexec(conn_.get(), sql.c_str())), sql);
}

Result<Transaction> Transaction::begin(Connection& conn) {
  if (auto done = conn.exec_script("BEGIN"); !done) return tl::unexpected(done.error());
  return Transaction(conn);
}

Transaction::~Transaction() {
  // A failed statement left the transaction aborted; ROLLBACK ends it either way.
  if (conn_ && conn_->healthy()) (void)conn_->exec_script("ROLLBACK");
}

Result<void> Transaction::commit() {
  Connection* conn = conn_;
  conn_ = nullptr;
  auto done = conn->exec_script("COMMIT");
  if (!done) return tl::unexpected(done.error());
  return {};
}

}  // namespace fetchd::pg
