-- 0005_drop_next_run_index: no query reads tasks by next_run_at (the schedulers keep the due
-- times in memory and load the tasks by id), yet every recorded run changed it. An update that
-- changes an indexed column cannot be a heap-only (HOT) update, so each run's task update also
-- wrote a new entry into every index of tasks. Without this index a run's task update can be
-- HOT (unless consecutive_failures changes, which the partial index tasks_suspended reads).
DROP INDEX IF EXISTS tasks_next_run_at;
-- A HOT update also needs room on the row's own page: leave 15 % of each new page of tasks free
-- for the next versions of its rows.
ALTER TABLE tasks SET (fillfactor = 85);
