// Gate: a door test threads wait at until the test opens it (a stalled store, a held
// transaction). Once open it stays open.
#pragma once

#include <condition_variable>
#include <mutex>

namespace fetchd::test {

class Gate {
 public:
  void wait() {
    std::unique_lock lock(mutex_);
    opened_.wait(lock, [&] { return open_; });
  }
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    opened_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
};

}  // namespace fetchd::test
