// Google Benchmark: validating a fetched body, the fast scan (check_json) against nlohmann's
// SAX parser (check_json_reference), on the sample feeds. Run: build/bench/micro/micro_json_check
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>

#include "worker/json_check.hpp"

namespace {

std::string feed(const char* name) {
  std::ifstream in(std::string(FETCHD_FIXTURES_DIR) + "/" + name, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void validate(benchmark::State& state, fetchd::JsonCheck (*check)(std::string_view),
              const char* name) {
  const std::string body = feed(name);
  if (body.empty()) {
    state.SkipWithError("fixture not found");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(check(body));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}

BENCHMARK_CAPTURE(validate, fast_67KB, &fetchd::check_json, "amazingexpo2020.json");
BENCHMARK_CAPTURE(validate, nlohmann_67KB, &fetchd::check_json_reference, "amazingexpo2020.json");
BENCHMARK_CAPTURE(validate, fast_1_5KB, &fetchd::check_json, "small.json");
BENCHMARK_CAPTURE(validate, nlohmann_1_5KB, &fetchd::check_json_reference, "small.json");

}  // namespace

BENCHMARK_MAIN();
