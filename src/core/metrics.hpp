// Process metrics in Prometheus text format (GET /metrics). Components receive a Metrics& and
// count into it; counters and histograms are lock-free on the hot path (atomics), labelled
// series live in small mutex-guarded maps.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace fetchd {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // fetchd_runs_total{status} and fetchd_run_duration_seconds (histogram).
  void count_run(std::string_view status, double duration_seconds);
  // fetchd_schedule_lag_seconds (histogram): fetch start minus due time.
  void observe_lag(double seconds);
  // fetchd_skipped_runs_total.
  void count_skipped();
  // fetchd_http_requests_total{method,route,status}.
  void count_http(std::string_view method, std::string_view route, int status);
  // A gauge read when rendering (queue depth, in-flight fetches, suspended tasks...).
  void add_gauge(std::string name, std::string help, std::function<double()> read);

  std::string render() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fetchd
