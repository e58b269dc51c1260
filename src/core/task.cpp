#include "core/task.hpp"

namespace fetchd {

Result<TaskSpec> task_spec_from_json(const nlohmann::json&, const TaskSpec*) {  // TODO(core)
  return fail(ErrorCode::kInternal, "not implemented");
}
std::vector<FieldError> validate_task_spec(const TaskSpec&) {
  return {};
}  // TODO(core)

}  // namespace fetchd
