-- GET over a list of paths, round robin: the feeds a fetchd benchmark's tasks fetch, so that the
-- raw limit is measured on the very files. Arguments after `--`: PATHS_FILE (one path a line).
package.path = os.getenv("BENCH_WRK_DIR") .. "/?.lua;" .. package.path
done = require("report").done

local requests = {}
local next_index = 0

function init(args)
  for path in io.lines(args[1]) do
    if path ~= "" then requests[#requests + 1] = wrk.format("GET", path) end
  end
  assert(#requests > 0, "paths.lua: no paths in " .. args[1])
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end
