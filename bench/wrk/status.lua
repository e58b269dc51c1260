-- GET /tasks/{id}/status over a list of task ids, round robin, with a bearer token.
-- Arguments after `--`: TOKEN IDS_FILE (one task id per line).
package.path = os.getenv("BENCH_WRK_DIR") .. "/?.lua;" .. package.path
done = require("report").done

local paths = {}
local next_index = 0

function init(args)
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  for id in io.lines(args[2]) do
    paths[#paths + 1] = "/tasks/" .. id .. "/status"
  end
  assert(#paths > 0, "status.lua: no task ids in " .. args[2])
end

function request()
  next_index = next_index % #paths + 1
  return wrk.format("GET", paths[next_index])
end
