// Checkpoints a WAL database on its own thread and connection, so that the writer's commits do
// not wait for a checkpoint's copying and fsyncs.
//
// The writer connection runs with wal_autocheckpoint off and reports the WAL's size after each
// commit (sqlite3_wal_hook). Once `pages` frames have not been copied back, the checkpointer's
// thread runs a PASSIVE checkpoint, which never blocks the writer or the readers. The WAL only
// starts over after a complete checkpoint, and a passive one trails a writer that keeps
// committing: when only a few frames are left after a pass, the checkpointer copies them while
// holding the writer's mutex, so that the WAL starts over; under a load that never leaves so few
// frames, the writer checkpoints itself at `limit` frames, as SQLite's auto-checkpoint would
// have done at `pages`, which bounds the WAL whatever the load. Once the WAL starts over, the
// writer's next commit cuts the WAL's file back to `wal_file` frames (journal_size_limit).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "store/sqlite/sqlite_connection.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace fetchd::sqlite {

class Checkpointer {
 public:
  // Opens the checkpointer's own connection to `path` and takes over `writer`'s checkpoints.
  // `writer` and `writer_mutex` (held by whoever uses `writer`) must outlive the Checkpointer.
  static Result<std::unique_ptr<Checkpointer>> start(const std::string& path, Connection& writer,
                                                     std::mutex& writer_mutex,
                                                     CheckpointLimits limits);
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;
  // Stops the thread and gives the checkpoints back to the writer (wal_autocheckpoint).
  ~Checkpointer();

 private:
  Checkpointer(std::unique_ptr<Connection> own, Connection& writer, std::mutex& writer_mutex,
               CheckpointLimits limits);
  static int on_commit(void* self, sqlite3* db, const char* schema, int frames);
  int checkpoint(int& frames, int& copied);
  void run();

  std::unique_ptr<Connection> own_;
  Connection& writer_;
  std::mutex& writer_mutex_;
  const CheckpointLimits limits_;
  std::mutex mutex_;
  std::condition_variable wake_;
  int copied_ = 0;  // frames the last checkpoint left copied back (0 once the WAL restarts)
  bool wanted_ = false;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is ready
};

}  // namespace fetchd::sqlite
