-- POST /tasks with the same JSON body every time, with a bearer token.
-- Arguments after `--`: TOKEN BODY_FILE.
package.path = os.getenv("BENCH_WRK_DIR") .. "/?.lua;" .. package.path
done = require("report").done

function init(args)
  local file = assert(io.open(args[2], "rb"))
  wrk.method = "POST"
  wrk.body = file:read("*a")
  file:close()
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  wrk.headers["Content-Type"] = "application/json"
end
