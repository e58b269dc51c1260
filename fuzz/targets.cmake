# The fuzz targets and the project libraries each one needs, in one place for both builds: the
# clang/libFuzzer build (fuzz/CMakeLists.txt) and the corpus replay of `make test`
# (fuzz/replay.cmake, included by tests/CMakeLists.txt).
set(FETCHD_FUZZ_TARGETS task_json request_builder rfc3339 config_loader http_server)
set(FETCHD_FUZZ_LIBS_task_json fetchd_core fetchd_fetch)
set(FETCHD_FUZZ_LIBS_request_builder fetchd_fetch)
set(FETCHD_FUZZ_LIBS_rfc3339 fetchd_core)
set(FETCHD_FUZZ_LIBS_config_loader fetchd_config)
set(FETCHD_FUZZ_LIBS_http_server fetchd_api fetchd_auth fetchd_store)
