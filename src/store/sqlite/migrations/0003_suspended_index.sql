-- 0003_suspended_index: the fetchd_suspended_tasks gauge counts the suspended tasks on every
-- GET /metrics. Without an index that is a scan of the whole tasks table (a million rows at a
-- million tasks); this partial index holds only the suspended ones, so the count reads a few
-- entries, and keeping it costs nothing for tasks that stay below max_attempt.
CREATE INDEX tasks_suspended ON tasks (id) WHERE consecutive_failures >= max_attempt;
