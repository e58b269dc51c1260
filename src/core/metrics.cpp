// Metrics in the Prometheus text exposition format 0.0.4. Unlabelled counters and histogram
// buckets are plain atomics (the workers count every run); labelled series sit in maps behind
// a shared mutex, taken exclusively only the first time a label set is seen.
#include "core/metrics.hpp"

#include <array>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <tuple>
#include <vector>

namespace fetchd {

namespace {

// Prometheus' defaults (5 ms … 10 s) plus 30 s and 60 s: runs are bounded by the fetch
// timeout (30 s by default), so the tail is worth seeing.
constexpr std::array<double, 13> kRunDurationBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                        1,     2.5,  5,     10,   30,  60};
// Lag is expected in milliseconds; 10 s already means the scheduler is far behind.
constexpr std::array<double, 13> kLagBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                0.25,  0.5,    1,     2.5,  5,     10};

// The statuses a finished run has: their series exist (at 0) from the start, so that a rate()
// over them is defined before the first failure.
constexpr std::array<std::string_view, 3> kRunStatuses = {"succeeded", "failed", "timed_out"};

// A label value as the format wants it: backslash, double quote and line feed escaped.
void append_label_value(std::string& out, std::string_view value) {
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// HELP text escapes backslash and line feed only.
void append_help_text(std::string& out, std::string_view text) {
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// Shortest text that reads back as the same double; the format's spellings of the specials.
void append_double(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    std::array<char, 32> buffer{};
    const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
    out.append(buffer.data(), ec == std::errc() ? end : buffer.data());
  }
}

void append_header(std::string& out, std::string_view name, std::string_view help,
                   std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  append_help_text(out, help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

bool is_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// The methods the API serves, as label values; anything else a client sends is "other", so
// that a client cannot grow the series without bound.
std::string_view method_label(std::string_view method) {
  for (const std::string_view known : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
    if (method == known) return known;
  return "other";
}

// A histogram with fixed upper bounds. Each observation lands in one bucket (the cumulative
// counts are summed when rendering), so that _count always equals the +Inf bucket.
template <std::size_t N>
class Histogram {
 public:
  explicit Histogram(const std::array<double, N>& bounds) : bounds_(bounds) {}

  void observe(double value) {
    if (std::isnan(value)) return;  // would poison _sum forever
    std::size_t i = 0;
    while (i < N && value > bounds_[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
  }

  void render(std::string& out, std::string_view name) const {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= N; ++i) {
      cumulative += counts_[i].load(std::memory_order_relaxed);
      out += name;
      out += "_bucket{le=\"";
      if (i < N) {
        append_double(out, bounds_[i]);
      } else {
        out += "+Inf";
      }
      out += "\"} ";
      out += std::to_string(cumulative);
      out += '\n';
    }
    out += name;
    out += "_sum ";
    append_double(out, sum_.load(std::memory_order_relaxed));
    out += '\n';
    out += name;
    out += "_count ";
    out += std::to_string(cumulative);
    out += '\n';
  }

 private:
  std::array<double, N> bounds_;
  std::array<std::atomic<std::uint64_t>, N + 1> counts_{};  // the last one: above every bound
  std::atomic<double> sum_{0.0};
};

struct HttpKey {
  std::string method;
  std::string route;
  int status = 0;

  friend bool operator<(const HttpKey& a, const HttpKey& b) {
    return std::tie(a.method, a.route, a.status) < std::tie(b.method, b.route, b.status);
  }
};

struct Gauge {
  std::string name;
  std::string help;
  std::function<double()> read;
};

}  // namespace

struct Metrics::Impl {
  std::array<std::atomic<std::uint64_t>, kRunStatuses.size()> runs_by_known_status{};
  // Statuses outside kRunStatuses (a caller's choice), created on first use.
  mutable std::shared_mutex other_runs_mutex;
  std::map<std::string, std::atomic<std::uint64_t>, std::less<>> other_runs;

  Histogram<kRunDurationBuckets.size()> run_duration{kRunDurationBuckets};
  Histogram<kLagBuckets.size()> lag{kLagBuckets};
  std::atomic<std::uint64_t> skipped{0};

  mutable std::shared_mutex http_mutex;
  std::map<HttpKey, std::atomic<std::uint64_t>> http_requests;

  mutable std::mutex gauges_mutex;
  std::vector<Gauge> gauges;

  void count_run_status(std::string_view status) {
    for (std::size_t i = 0; i < kRunStatuses.size(); ++i) {
      if (kRunStatuses[i] == status) {
        runs_by_known_status[i].fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    {
      std::shared_lock lock(other_runs_mutex);
      if (const auto it = other_runs.find(status); it != other_runs.end()) {
        it->second.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    std::unique_lock lock(other_runs_mutex);
    other_runs[std::string(status)].fetch_add(1, std::memory_order_relaxed);
  }

  void render_runs(std::string& out) const {
    append_header(out, "fetchd_runs_total", "Finished runs by status.", "counter");
    std::map<std::string, std::uint64_t> by_status;
    for (std::size_t i = 0; i < kRunStatuses.size(); ++i)
      by_status[std::string(kRunStatuses[i])] =
          runs_by_known_status[i].load(std::memory_order_relaxed);
    {
      std::shared_lock lock(other_runs_mutex);
      for (const auto& [status, count] : other_runs)
        by_status[status] = count.load(std::memory_order_relaxed);
    }
    for (const auto& [status, count] : by_status) {
      out += "fetchd_runs_total{status=\"";
      append_label_value(out, status);
      out += "\"} ";
      out += std::to_string(count);
      out += '\n';
    }
  }

  void render_http(std::string& out) const {
    append_header(out, "fetchd_http_requests_total",
                  "HTTP API requests by method, route pattern and status.", "counter");
    std::shared_lock lock(http_mutex);
    for (const auto& [key, count] : http_requests) {
      out += "fetchd_http_requests_total{method=\"";
      append_label_value(out, key.method);
      out += "\",route=\"";
      append_label_value(out, key.route);
      out += "\",status=\"";
      out += std::to_string(key.status);
      out += "\"} ";
      out += std::to_string(count.load(std::memory_order_relaxed));
      out += '\n';
    }
  }

  void render_gauges(std::string& out) const {
    std::vector<Gauge> copy;
    {
      std::lock_guard lock(gauges_mutex);
      copy = gauges;
    }
    // Read outside the lock: a reader may take its own component's locks.
    for (const auto& gauge : copy) {
      append_header(out, gauge.name, gauge.help, "gauge");
      out += gauge.name;
      out += ' ';
      append_double(out, gauge.read());
      out += '\n';
    }
  }
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

void Metrics::count_run(std::string_view status, double duration_seconds) {
  impl_->count_run_status(status);
  impl_->run_duration.observe(duration_seconds);
}

void Metrics::observe_lag(double seconds) {
  impl_->lag.observe(seconds);
}

void Metrics::count_skipped() {
  impl_->skipped.fetch_add(1, std::memory_order_relaxed);
}

void Metrics::count_http(std::string_view method, std::string_view route, int status) {
  HttpKey key{std::string(method_label(method)), std::string(route), status};
  {
    std::shared_lock lock(impl_->http_mutex);
    if (const auto it = impl_->http_requests.find(key); it != impl_->http_requests.end()) {
      it->second.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  std::unique_lock lock(impl_->http_mutex);
  impl_->http_requests[std::move(key)].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::add_gauge(std::string name, std::string help, std::function<double()> read) {
  // A bad name or a missing reader is a wiring bug, not input.
  if (!is_metric_name(name)) throw std::invalid_argument("invalid metric name: " + name);
  if (!read) throw std::invalid_argument("gauge " + name + " has no reader");
  std::lock_guard lock(impl_->gauges_mutex);
  for (auto& gauge : impl_->gauges) {
    if (gauge.name == name) {  // re-wired component: the newest reader wins
      gauge.help = std::move(help);
      gauge.read = std::move(read);
      return;
    }
  }
  impl_->gauges.push_back(Gauge{std::move(name), std::move(help), std::move(read)});
}

std::string Metrics::render() const {
  std::string out;
  out.reserve(4096);
  impl_->render_runs(out);
  append_header(out, "fetchd_run_duration_seconds",
                "How long finished runs took, from fetch start to outcome.", "histogram");
  impl_->run_duration.render(out, "fetchd_run_duration_seconds");
  append_header(out, "fetchd_schedule_lag_seconds",
                "Time from a run's due time to the start of its fetch.", "histogram");
  impl_->lag.render(out, "fetchd_schedule_lag_seconds");
  append_header(out, "fetchd_skipped_runs_total",
                "Due runs skipped because the previous run of the task was still in flight.",
                "counter");
  out += "fetchd_skipped_runs_total ";
  out += std::to_string(impl_->skipped.load(std::memory_order_relaxed));
  out += '\n';
  impl_->render_http(out);
  impl_->render_gauges(out);
  return out;
}

}  // namespace fetchd
