// name_this_thread: the name reaches the kernel (what top -H and perf show), on the calling
// thread only.
#include "core/thread_name.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace {

std::string name_of(pthread_t thread) {
  char name[16] = {};
  EXPECT_EQ(pthread_getname_np(thread, name, sizeof name), 0);
  return name;
}

TEST(ThreadName, NamesTheCallingThreadOnly) {
  const std::string before = name_of(pthread_self());
  std::string inside;
  std::thread worker([&] {
    fetchd::name_this_thread("fetchd-test");
    inside = name_of(pthread_self());
  });
  worker.join();
  EXPECT_EQ(inside, "fetchd-test");
  EXPECT_EQ(name_of(pthread_self()), before);
}

}  // namespace
