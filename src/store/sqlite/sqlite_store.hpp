// The embedded Store: one SQLite file in WAL mode, foreign keys on, a busy timeout, prepared
// statements only, migrations embedded in the binary (store/sqlite/migrations/*.sql).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "store/store.hpp"

namespace fetchd {

// When the WAL is copied back into the database file (see sqlite_checkpointer.hpp). Each time
// the WAL starts over the writer stalls: the last copy, and the sync of the WAL's header
// (synchronous=NORMAL); a `limit` of 64 000 showed no gain over 8 000 under a load the
// checkpointer's thread cannot keep up with. The WAL's file can outgrow `limit` while readers
// keep the WAL from starting over; it is cut back to `wal_file` frames once it does. Cutting it
// back to `pages` would truncate and regrow it at nearly every start-over, which costs the
// writer more than the space is worth (all measured in docs/benchmarks.md).
struct CheckpointLimits {
  int pages = 1000;      // a background checkpoint from here on: SQLite's default, 4 MB of 4 KB
  int limit = 8000;      // the writer checkpoints itself from here on: 32 MB
  int wal_file = 16000;  // once the WAL starts over, its file is cut back to this: 64 MB
};

struct SqliteOptions {
  std::chrono::milliseconds busy_timeout{5000};
  // Readers run in parallel with the one writer (WAL); ":memory:" always uses one connection
  // for everything. nullopt: one per core and two more, at least 4, so that each HTTP thread
  // (one per core) can hold one for a whole GET (Store::read_snapshot) beside the engine's.
  std::optional<unsigned> read_connections;
  CheckpointLimits checkpoints;
};

// "sqlite://./fetchd.db" -> "./fetchd.db", "sqlite:///abs/path" -> "/abs/path",
// "sqlite://rel/path" -> "rel/path", "sqlite://:memory:" -> ":memory:". nullopt when the
// scheme is not sqlite:// or the path is empty.
std::optional<std::string> sqlite_path_from_url(std::string_view url);

// Opens (creating the file if needed) the database at `path` (":memory:" for a private
// in-memory database, used by tests). kUnavailable with a clear message when it cannot be
// opened. Does not migrate: call migrate().
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path,
                                                 SqliteOptions options = {});

}  // namespace fetchd
