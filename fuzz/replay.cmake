# Replays every fuzz target's committed corpus and regression inputs (fuzz/corpus/<target>,
# fuzz/regressions/<target>) with a plain main() instead of libFuzzer, so that the tests need no
# clang: ctest label `fuzz`. Included by tests/CMakeLists.txt.
include(${CMAKE_CURRENT_LIST_DIR}/targets.cmake)
foreach(t IN LISTS FETCHD_FUZZ_TARGETS)
  add_executable(fuzz_replay_${t} ${CMAKE_CURRENT_LIST_DIR}/targets/${t}.cpp
                 ${CMAKE_CURRENT_LIST_DIR}/replay_main.cpp)
  target_link_libraries(fuzz_replay_${t} PRIVATE ${FETCHD_FUZZ_LIBS_${t}} fetchd_warnings)
  add_test(NAME fuzz.${t}
           COMMAND fuzz_replay_${t} ${CMAKE_CURRENT_LIST_DIR}/corpus/${t}
                   ${CMAKE_CURRENT_LIST_DIR}/regressions/${t})
  set_tests_properties(fuzz.${t} PROPERTIES LABELS fuzz TIMEOUT 120)
endforeach()
