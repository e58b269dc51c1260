#include "store/sqlite/sqlite_checkpointer.hpp"

#include <cstdint>
#include <string>
#include <utility>

#include "core/thread_name.hpp"

namespace fetchd::sqlite {
namespace {

// The WAL's file keeps the largest size it ever reached (a burst, or a long reader that kept
// the WAL from starting over) unless journal_size_limit is set: then the writer's first commit
// after the WAL starts over truncates the file to that many bytes (or to what it has written).
Result<void> cut_back_wal_file(Connection& writer, int frames) {
  std::int64_t page_size = 0;
  {
    auto query = writer.query("PRAGMA page_size");
    if (!query) return tl::unexpected(query.error());
    auto row = query->step();
    if (!row) return tl::unexpected(row.error());
    if (*row) page_size = query->int64(0);
  }
  // The WAL's header is 32 bytes, and each frame a 24-byte header and a page.
  const std::int64_t bytes = 32 + std::int64_t{frames} * (24 + page_size);
  return writer.exec("PRAGMA journal_size_limit = " + std::to_string(bytes));
}

}  // namespace

Result<std::unique_ptr<Checkpointer>> Checkpointer::start(const std::string& path,
                                                          Connection& writer,
                                                          std::mutex& writer_mutex,
                                                          CheckpointLimits limits) {
  if (limits.pages < 1 || limits.limit < limits.pages || limits.wal_file < 0) {
    return fail(ErrorCode::kInvalid,
                "checkpoint limits must satisfy 1 <= pages <= limit and 0 <= wal_file");
  }
  if (auto cut = cut_back_wal_file(writer, limits.wal_file); !cut) {
    return tl::unexpected(cut.error());
  }
  auto own = Connection::open(path, ConnectionOptions{});
  if (!own) return tl::unexpected(own.error());
  return std::unique_ptr<Checkpointer>(
      new Checkpointer(std::move(*own), writer, writer_mutex, limits));
}

Checkpointer::Checkpointer(std::unique_ptr<Connection> own, Connection& writer,
                           std::mutex& writer_mutex, CheckpointLimits limits)
    : own_(std::move(own)),
      writer_(writer),
      writer_mutex_(writer_mutex),
      limits_(limits),
      thread_([this] { run(); }) {
  // Replaces the writer's auto-checkpoint hook (sqlite3_wal_hook and wal_autocheckpoint share
  // the one slot).
  sqlite3_wal_hook(writer_.handle(), &Checkpointer::on_commit, this);
}

Checkpointer::~Checkpointer() {
  sqlite3_wal_autocheckpoint(writer_.handle(), limits_.pages);
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

// On the writer's thread, after each commit, with the WAL's size in frames.
int Checkpointer::on_commit(void* self_ptr, sqlite3* db, const char* schema, int frames) {
  auto& self = *static_cast<Checkpointer*>(self_ptr);
  if (frames >= self.limits_.limit) {
    // Complete unless a reader still uses old frames; the next write then restarts the WAL.
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    return SQLITE_OK;
  }
  bool wake = false;
  {
    std::lock_guard lock(self.mutex_);
    if (frames < self.copied_) self.copied_ = 0;  // the WAL started over
    if (!self.wanted_ && frames - self.copied_ >= self.limits_.pages) {
      self.wanted_ = true;
      wake = true;
    }
  }
  if (wake) self.wake_.notify_one();
  return SQLITE_OK;
}

int Checkpointer::checkpoint(int& frames, int& copied) {
  return sqlite3_wal_checkpoint_v2(own_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &frames,
                                   &copied);
}

void Checkpointer::run() {
  name_this_thread("fetchd-ckpt");
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return wanted_ || stopping_; });
    if (stopping_) return;
    wanted_ = false;
    lock.unlock();
    int frames = -1;
    int copied = -1;
    // A failure (I/O error, a checkpoint already running) leaves the frames in the WAL; the
    // writer's next commits ask again, and at `limit` the writer checkpoints itself.
    int rc = checkpoint(frames, copied);
    if (rc == SQLITE_OK && copied < frames && frames - copied <= limits_.pages / 4) {
      // The writer committed during the copy, so the WAL cannot start over yet. Copying the
      // few frames left while no commit can come completes it (unless a reader still uses old
      // frames), and the writer's next transaction then writes the WAL from its start: a
      // short wait for the writer, and a WAL that stays about `pages` long under light load.
      std::lock_guard writer(writer_mutex_);
      rc = checkpoint(frames, copied);
    }
    lock.lock();
    if (rc == SQLITE_OK && copied >= 0) copied_ = copied;
  }
}

}  // namespace fetchd::sqlite
