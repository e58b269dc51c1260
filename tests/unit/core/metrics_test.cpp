// Metrics (src/core/metrics.cpp): the rendered text is parsed line by line as a Prometheus
// scraper would (text format 0.0.4): HELP/TYPE before each family, exact counter values,
// cumulative histogram buckets on both sides of each bound, +Inf, _sum, _count, escaping of
// label values and help, gauges read at render time, and counting from many threads.
#include "core/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fetchd {
namespace {

struct Family {
  std::string help;
  std::string type;
};

// One scrape, parsed: families by name, samples by their series text ("name{labels}").
struct Scrape {
  std::map<std::string, Family> families;
  std::vector<std::string> family_order;
  std::map<std::string, double> samples;
  std::vector<std::string> sample_order;
  std::vector<std::string> errors;

  double value(const std::string& series) const {
    const auto it = samples.find(series);
    if (it == samples.end()) throw std::out_of_range("no sample " + series);
    return it->second;
  }
  bool has(const std::string& series) const { return samples.contains(series); }
};

// The metric name of a sample's series: up to '{' or the end.
std::string name_of(const std::string& series) {
  return series.substr(0, series.find('{'));
}

// The family a sample belongs to (a histogram's _bucket/_sum/_count belong to it).
std::string family_of(const std::string& name, const std::map<std::string, Family>& families) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.ends_with(s)) {
      const std::string base = name.substr(0, name.size() - s.size());
      const auto it = families.find(base);
      if (it != families.end() && it->second.type == "histogram") return base;
    }
  }
  return name;
}

double parse_value(const std::string& text) {
  if (text == "+Inf") return INFINITY;
  if (text == "-Inf") return -INFINITY;
  if (text == "NaN") return NAN;
  std::size_t used = 0;
  const double v = std::stod(text, &used);
  if (used != text.size()) throw std::invalid_argument("bad value " + text);
  return v;
}

Scrape parse(const std::string& text) {
  Scrape out;
  if (!text.empty() && text.back() != '\n') out.errors.push_back("no final line feed");
  std::istringstream in(text);
  std::string line;
  std::string current;  // the family whose TYPE came last
  while (std::getline(in, line)) {
    if (line.empty()) {
      out.errors.push_back("empty line");
      continue;
    }
    if (line.starts_with("# HELP ")) {
      const auto rest = line.substr(7);
      const auto space = rest.find(' ');
      const std::string name = rest.substr(0, space);
      if (out.families.contains(name)) out.errors.push_back("HELP twice: " + name);
      out.families[name].help = space == std::string::npos ? "" : rest.substr(space + 1);
      out.family_order.push_back(name);
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      const auto rest = line.substr(7);
      const auto space = rest.find(' ');
      const std::string name = rest.substr(0, space);
      if (!out.families.contains(name)) out.errors.push_back("TYPE before HELP: " + name);
      out.families[name].type = rest.substr(space + 1);
      current = name;
      continue;
    }
    if (line.starts_with("#")) {
      out.errors.push_back("unexpected comment: " + line);
      continue;
    }
    // The value follows the last space outside the label braces.
    const auto close = line.rfind('}');
    const auto space = line.find(' ', close == std::string::npos ? 0 : close);
    if (space == std::string::npos) {
      out.errors.push_back("no value: " + line);
      continue;
    }
    const std::string series = line.substr(0, space);
    if (family_of(name_of(series), out.families) != current)
      out.errors.push_back("sample outside its family: " + line);
    if (out.samples.contains(series)) out.errors.push_back("duplicate series: " + series);
    try {
      out.samples[series] = parse_value(line.substr(space + 1));
    } catch (const std::exception& e) {
      out.errors.push_back(std::string(e.what()) + ": " + line);
    }
    out.sample_order.push_back(series);
  }
  return out;
}

std::string bucket(const std::string& name, const std::string& le) {
  return name + "_bucket{le=\"" + le + "\"}";
}

const std::vector<std::string> kDurationBounds = {"0.005", "0.01", "0.025", "0.05", "0.1",
                                                  "0.25",  "0.5",  "1",     "2.5",  "5",
                                                  "10",    "30",   "60",    "+Inf"};
const std::vector<std::string> kLagBounds = {"0.001", "0.0025", "0.005", "0.01", "0.025",
                                             "0.05",  "0.1",    "0.25",  "0.5",  "1",
                                             "2.5",   "5",      "10",    "+Inf"};

TEST(Metrics, FreshRenderHasEveryFamilyAtZero) {
  const Metrics metrics;
  const Scrape s = parse(metrics.render());
  EXPECT_EQ(s.errors, std::vector<std::string>{});
  EXPECT_EQ(s.family_order,
            (std::vector<std::string>{"fetchd_runs_total", "fetchd_run_duration_seconds",
                                      "fetchd_schedule_lag_seconds", "fetchd_skipped_runs_total",
                                      "fetchd_http_requests_total"}));
  EXPECT_EQ(s.families.at("fetchd_runs_total").type, "counter");
  EXPECT_EQ(s.families.at("fetchd_run_duration_seconds").type, "histogram");
  EXPECT_EQ(s.families.at("fetchd_schedule_lag_seconds").type, "histogram");
  EXPECT_EQ(s.families.at("fetchd_skipped_runs_total").type, "counter");
  EXPECT_EQ(s.families.at("fetchd_http_requests_total").type, "counter");
  for (const auto& [name, family] : s.families) EXPECT_FALSE(family.help.empty()) << name;
  // The finished-run statuses exist before any run, so that rates over them are defined.
  for (const char* status : {"succeeded", "failed", "timed_out"})
    EXPECT_EQ(s.value(std::string("fetchd_runs_total{status=\"") + status + "\"}"), 0) << status;
  for (const auto& le : kDurationBounds)
    EXPECT_EQ(s.value(bucket("fetchd_run_duration_seconds", le)), 0) << le;
  for (const auto& le : kLagBounds)
    EXPECT_EQ(s.value(bucket("fetchd_schedule_lag_seconds", le)), 0) << le;
  EXPECT_EQ(s.value("fetchd_run_duration_seconds_sum"), 0);
  EXPECT_EQ(s.value("fetchd_run_duration_seconds_count"), 0);
  EXPECT_EQ(s.value("fetchd_skipped_runs_total"), 0);
  // No request yet: no http series (and so no label set that never happened).
  for (const auto& series : s.sample_order)
    EXPECT_FALSE(series.starts_with("fetchd_http_requests_total")) << series;
}

TEST(Metrics, HistogramBucketsAreExactListedInOrderAndCumulative) {
  Metrics metrics;
  const Scrape empty = parse(metrics.render());
  std::vector<std::string> duration_series;
  for (const auto& series : empty.sample_order)
    if (series.starts_with("fetchd_run_duration_seconds_bucket")) duration_series.push_back(series);
  std::vector<std::string> expected;
  for (const auto& le : kDurationBounds)
    expected.push_back(bucket("fetchd_run_duration_seconds", le));
  EXPECT_EQ(duration_series, expected);  // ascending, +Inf last

  // On a bound counts in that bucket (le is "<="); just above it, in the next one.
  metrics.count_run("succeeded", 0.005);
  metrics.count_run("succeeded", 0.0051);
  metrics.count_run("failed", 1.0);
  metrics.count_run("failed", 60.0);
  metrics.count_run("timed_out", 60.5);
  metrics.count_run("succeeded", 0.0);
  const Scrape s = parse(metrics.render());
  EXPECT_EQ(s.errors, std::vector<std::string>{});
  const std::map<std::string, double> want = {
      {"0.005", 2}, {"0.01", 3}, {"0.025", 3}, {"0.05", 3}, {"0.1", 3}, {"0.25", 3}, {"0.5", 3},
      {"1", 4},     {"2.5", 4},  {"5", 4},     {"10", 4},   {"30", 4},  {"60", 5},   {"+Inf", 6}};
  for (const auto& [le, count] : want)
    EXPECT_EQ(s.value(bucket("fetchd_run_duration_seconds", le)), count) << le;
  EXPECT_EQ(s.value("fetchd_run_duration_seconds_count"), 6);
  EXPECT_DOUBLE_EQ(s.value("fetchd_run_duration_seconds_sum"), 0.005 + 0.0051 + 1 + 60 + 60.5);
  EXPECT_EQ(s.value("fetchd_runs_total{status=\"succeeded\"}"), 3);
  EXPECT_EQ(s.value("fetchd_runs_total{status=\"failed\"}"), 2);
  EXPECT_EQ(s.value("fetchd_runs_total{status=\"timed_out\"}"), 1);
}

TEST(Metrics, LagHistogramHasItsOwnBuckets) {
  Metrics metrics;
  metrics.observe_lag(0.001);   // on the first bound
  metrics.observe_lag(0.0011);  // just above it
  metrics.observe_lag(10);      // on the last bound
  metrics.observe_lag(10.001);  // above every bound
  metrics.observe_lag(-0.002);  // a clock step backwards: the lowest bucket
  metrics.observe_lag(NAN);     // dropped
  const Scrape s = parse(metrics.render());
  EXPECT_EQ(s.errors, std::vector<std::string>{});
  EXPECT_EQ(s.value(bucket("fetchd_schedule_lag_seconds", "0.001")), 2);
  EXPECT_EQ(s.value(bucket("fetchd_schedule_lag_seconds", "0.0025")), 3);
  EXPECT_EQ(s.value(bucket("fetchd_schedule_lag_seconds", "5")), 3);
  EXPECT_EQ(s.value(bucket("fetchd_schedule_lag_seconds", "10")), 4);
  EXPECT_EQ(s.value(bucket("fetchd_schedule_lag_seconds", "+Inf")), 5);
  EXPECT_EQ(s.value("fetchd_schedule_lag_seconds_count"), 5);
  EXPECT_DOUBLE_EQ(s.value("fetchd_schedule_lag_seconds_sum"),
                   0.001 + 0.0011 + 10 + 10.001 - 0.002);
  // The run histogram is untouched.
  EXPECT_EQ(s.value("fetchd_run_duration_seconds_count"), 0);
}

TEST(Metrics, SkippedRunsAndOtherStatusesCount) {
  Metrics metrics;
  metrics.count_skipped();
  metrics.count_skipped();
  metrics.count_run("skipped", 0);
  const Scrape s = parse(metrics.render());
  EXPECT_EQ(s.errors, std::vector<std::string>{});
  EXPECT_EQ(s.value("fetchd_skipped_runs_total"), 2);
  EXPECT_EQ(s.value("fetchd_runs_total{status=\"skipped\"}"), 1);
  EXPECT_EQ(s.value("fetchd_runs_total{status=\"succeeded\"}"), 0);
}

TEST(Metrics, HttpRequestsByMethodRouteAndStatus) {
  Metrics metrics;
  metrics.count_http("GET", "/tasks/{task_id}", 200);
  metrics.count_http("GET", "/tasks/{task_id}", 200);
  metrics.count_http("GET", "/tasks/{task_id}", 404);
  metrics.count_http("POST", "/tasks", 201);
  metrics.count_http("BREW", "unmatched", 404);  // unknown methods collapse into one value
  metrics.count_http("PROPFIND", "unmatched", 404);
  const Scrape s = parse(metrics.render());
  EXPECT_EQ(s.errors, std::vector<std::string>{});
  EXPECT_EQ(
      s.value(R"(fetchd_http_requests_total{method="GET",route="/tasks/{task_id}",status="200"})"),
      2);
  EXPECT_EQ(
      s.value(R"(fetchd_http_requests_total{method="GET",route="/tasks/{task_id}",status="404"})"),
      1);
  EXPECT_EQ(s.value(R"(fetchd_http_requests_total{method="POST",route="/tasks",status="201"})"), 1);
  EXPECT_EQ(s.value(R"(fetchd_http_requests_total{method="other",route="unmatched",status="404"})"),
            2);
  int http_series = 0;
  for (const auto& series : s.sample_order)
    if (series.starts_with("fetchd_http_requests_total")) ++http_series;
  EXPECT_EQ(http_series, 4);
}

TEST(Metrics, LabelValuesAreEscaped) {
  Metrics metrics;
  metrics.count_http("GET", "a\\b\"c\nd", 200);
  metrics.count_run("we\"ird\\", 1);
  const std::string text = metrics.render();
  EXPECT_NE(text.find(R"(route="a\\b\"c\nd")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(fetchd_runs_total{status="we\"ird\\"} 1)"), std::string::npos) << text;
  const Scrape s = parse(text);
  EXPECT_EQ(s.errors, std::vector<std::string>{});
}

TEST(Metrics, GaugesAreReadAtRenderTimeAfterTheBuiltIns) {
  Metrics metrics;
  double depth = 3;
  metrics.add_gauge("fetchd_queue_depth", "Runs waiting.\nSecond \\ line", [&] { return depth; });
  metrics.add_gauge("fetchd_inflight_fetches", "Fetches in flight.", [] { return 0.25; });
  Scrape s = parse(metrics.render());
  EXPECT_EQ(s.errors, std::vector<std::string>{});
  EXPECT_EQ(s.families.at("fetchd_queue_depth").type, "gauge");
  EXPECT_EQ(s.families.at("fetchd_queue_depth").help, "Runs waiting.\\nSecond \\\\ line");
  EXPECT_EQ(s.value("fetchd_queue_depth"), 3);
  EXPECT_EQ(s.value("fetchd_inflight_fetches"), 0.25);
  EXPECT_EQ(s.family_order.back(), "fetchd_inflight_fetches");  // in the order added
  depth = 7;
  EXPECT_EQ(parse(metrics.render()).value("fetchd_queue_depth"), 7);
  // Adding the same name again replaces the reader instead of rendering it twice.
  metrics.add_gauge("fetchd_queue_depth", "Runs waiting.", [] { return 1; });
  s = parse(metrics.render());
  EXPECT_EQ(s.errors, std::vector<std::string>{});
  EXPECT_EQ(s.value("fetchd_queue_depth"), 1);
}

TEST(Metrics, GaugeSpecialValuesUseTheFormatsSpellings) {
  Metrics metrics;
  metrics.add_gauge("g_nan", "n", [] { return NAN; });
  metrics.add_gauge("g_inf", "i", [] { return INFINITY; });
  metrics.add_gauge("g_ninf", "i", [] { return -INFINITY; });
  metrics.add_gauge("g_big", "b", [] { return 1e21; });
  const std::string text = metrics.render();
  EXPECT_NE(text.find("\ng_nan NaN\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\ng_inf +Inf\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\ng_ninf -Inf\n"), std::string::npos) << text;
  const Scrape s = parse(text);
  EXPECT_EQ(s.errors, std::vector<std::string>{});
  EXPECT_EQ(s.value("g_big"), 1e21);
}

TEST(Metrics, BadGaugeNamesAreRefused) {
  Metrics metrics;
  EXPECT_THROW(metrics.add_gauge("", "h", [] { return 0.0; }), std::invalid_argument);
  EXPECT_THROW(metrics.add_gauge("9lives", "h", [] { return 0.0; }), std::invalid_argument);
  EXPECT_THROW(metrics.add_gauge("has space", "h", [] { return 0.0; }), std::invalid_argument);
  EXPECT_THROW(metrics.add_gauge("has-dash", "h", [] { return 0.0; }), std::invalid_argument);
  EXPECT_THROW(metrics.add_gauge("no_reader", "h", nullptr), std::invalid_argument);
  EXPECT_NO_THROW(metrics.add_gauge("ok:name_9", "h", [] { return 0.0; }));
  EXPECT_NO_THROW(metrics.add_gauge("_x", "h", [] { return 0.0; }));
}

TEST(Metrics, CountsFromManyThreadsAreExact) {
  Metrics metrics;
  constexpr int kThreads = 4;
  constexpr int kEach = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics, t] {
      for (int i = 0; i < kEach; ++i) {
        metrics.count_run(i % 2 == 0 ? "succeeded" : "failed", 0.5);
        metrics.observe_lag(0.002);
        metrics.count_skipped();
        metrics.count_http("GET", "/r" + std::to_string(i % 3), 200);
        if (t == 0 && i % 100 == 0) (void)metrics.render();  // renders race with counting
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const Scrape s = parse(metrics.render());
  EXPECT_EQ(s.errors, std::vector<std::string>{});
  constexpr double kTotal = kThreads * kEach;
  EXPECT_EQ(s.value("fetchd_runs_total{status=\"succeeded\"}"), kTotal / 2);
  EXPECT_EQ(s.value("fetchd_runs_total{status=\"failed\"}"), kTotal / 2);
  EXPECT_EQ(s.value("fetchd_run_duration_seconds_count"), kTotal);
  EXPECT_EQ(s.value(bucket("fetchd_run_duration_seconds", "0.25")), 0);
  EXPECT_EQ(s.value(bucket("fetchd_run_duration_seconds", "0.5")), kTotal);
  EXPECT_DOUBLE_EQ(s.value("fetchd_run_duration_seconds_sum"), kTotal * 0.5);
  EXPECT_EQ(s.value(bucket("fetchd_schedule_lag_seconds", "0.001")), 0);
  EXPECT_EQ(s.value(bucket("fetchd_schedule_lag_seconds", "0.0025")), kTotal);
  EXPECT_EQ(s.value("fetchd_skipped_runs_total"), kTotal);
  double http = 0;
  for (const char* route : {"/r0", "/r1", "/r2"})
    http += s.value(std::string(R"(fetchd_http_requests_total{method="GET",route=")") + route +
                    R"(",status="200"})");
  EXPECT_EQ(http, kTotal);
}

}  // namespace
}  // namespace fetchd
