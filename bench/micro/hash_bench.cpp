// Google Benchmark: the content hash of a fetched body, SHA-256 through OpenSSL (what
// sha256_hex uses) against libsodium's portable SHA-256. Run: build/bench/micro/micro_hash
#include <benchmark/benchmark.h>
#include <sodium.h>

#include <string>

#include "worker/fetch_outcome.hpp"

namespace {

void openssl_sha256(benchmark::State& state) {
  const std::string body(static_cast<std::size_t>(state.range(0)), 'x');
  for (auto _ : state) benchmark::DoNotOptimize(fetchd::sha256_hex(body));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}

void libsodium_sha256(benchmark::State& state) {
  if (sodium_init() < 0) state.SkipWithError("sodium_init failed");
  const std::string body(static_cast<std::size_t>(state.range(0)), 'x');
  unsigned char digest[crypto_hash_sha256_BYTES];
  for (auto _ : state) {
    crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(body.data()), body.size());
    benchmark::DoNotOptimize(digest);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}

// The sizes of the sample feeds: small.json and amazingexpo2020.json.
BENCHMARK(openssl_sha256)->Arg(1'500)->Arg(68'567);
BENCHMARK(libsodium_sha256)->Arg(1'500)->Arg(68'567);

}  // namespace

BENCHMARK_MAIN();
