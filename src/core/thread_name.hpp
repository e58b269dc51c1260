// Names the calling thread (Linux: at most 15 characters), so that `top -H`, `perf` and a
// debugger tell fetchd's threads apart: the fetch loop from the writer, the scheduler, the
// HTTP threads.
#pragma once

#include <pthread.h>

namespace fetchd {

inline void name_this_thread(const char* name) {
  (void)pthread_setname_np(pthread_self(), name);
}

}  // namespace fetchd
