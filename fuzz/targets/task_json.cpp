// Fuzz target: the task JSON validator (core/task.hpp). The input is an API body: parsed with
// nlohmann::json (its exceptions caught, as the API does), read as a creation and as a partial
// update of a valid task, then validated. Properties: nothing throws; a creation that reads
// also passes validate_task_spec; and a valid spec whose URL has no {placeholder} can be built
// into a request (a task accepted with 201 must be runnable).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/task.hpp"
#include "fetch/request_builder.hpp"
#include "fuzz_check.hpp"

namespace {

using nlohmann::json;

// The API refuses bodies, and `parameters` strings, nested deeper than this
// (api::kMaxJsonDepth); so does this target, since copying or serialising a json recurses.
constexpr int kMaxDepth = 64;

// Nesting depth of a JSON value, without recursing.
int depth_of(const json& value) {
  int deepest = 0;
  std::vector<std::pair<const json*, int>> todo{{&value, 1}};
  while (!todo.empty()) {
    const auto [node, depth] = todo.back();
    todo.pop_back();
    if (!node->is_structured()) continue;
    deepest = std::max(deepest, depth);
    for (const auto& child : *node) todo.emplace_back(&child, depth + 1);
  }
  return deepest;
}

const fetchd::TaskSpec& base_spec() {
  static const fetchd::TaskSpec spec = [] {
    fetchd::TaskSpec s;
    s.name = "amazingexpo";
    s.url = "https://example.com/php-architecture/";
    s.parameters = json{{"eventfile", "amazingexpo2020.json"}};
    s.start_time = fetchd::from_unix_ms(1672868498930);
    s.end_time = fetchd::from_unix_ms(1988487698930);
    s.task_interval = 2;
    return s;
  }();
  return spec;
}

void check_spec(const fetchd::TaskSpec& spec, std::string_view input) {
  if (depth_of(spec.parameters) > kMaxDepth) return;  // the API refuses it before this point
  FUZZ_CHECK(fetchd::validate_task_spec(spec).empty(),
             "task_spec_from_json accepted a spec that validate_task_spec rejects", input);
  FUZZ_CHECK(spec.parameters.is_object(), "a valid spec's parameters are not an object", input);
  // What the stores do with the parameters.
  const auto stored = spec.parameters.dump();
  FUZZ_CHECK(json::parse(stored, nullptr, false) == spec.parameters,
             "stored parameters do not read back", input);
  if (spec.url.find('{') == std::string::npos) {
    const auto request = fetchd::build_fetch_request(spec.url, spec.parameters,
                                                     std::chrono::seconds(30), 1024 * 1024);
    FUZZ_CHECK(request.has_value(), "a valid task's request cannot be built", input);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  json body;
  try {
    body = json::parse(input, [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxDepth) throw std::length_error("too deep");
      return true;
    });
  } catch (const std::exception&) {
    return 0;  // json::parse_error, or too deep: the API answers 400 before validating
  }

  if (const auto created = fetchd::task_spec_from_json(body)) check_spec(*created, input);
  if (const auto updated = fetchd::task_spec_from_json(body, &base_spec()))
    check_spec(*updated, input);
  return 0;
}
