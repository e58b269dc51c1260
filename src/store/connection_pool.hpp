// A fixed set of database connections shared by threads, for the store backends: a caller
// checks one out (RAII lease) and waits only when every connection is checked out.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace fetchd {

template <typename Connection>
class ConnectionPool {
 public:
  explicit ConnectionPool(std::vector<std::unique_ptr<Connection>> connections)
      : connections_(std::move(connections)) {
    for (auto& conn : connections_) free_.push_back(conn.get());
  }

  bool empty() const { return connections_.empty(); }

  class Lease {
   public:
    Lease(ConnectionPool& pool, Connection& conn) : pool_(pool), conn_(conn) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { pool_.release(conn_); }
    Connection& connection() const { return conn_; }

   private:
    ConnectionPool& pool_;
    Connection& conn_;
  };

  Lease acquire() {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [this] { return !free_.empty(); });
    Connection* conn = free_.back();
    free_.pop_back();
    return Lease(*this, *conn);
  }

 private:
  void release(Connection& conn) {
    {
      std::lock_guard lock(mutex_);
      free_.push_back(&conn);
    }
    available_.notify_one();
  }

  std::vector<std::unique_ptr<Connection>> connections_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<Connection*> free_;
};

}  // namespace fetchd
