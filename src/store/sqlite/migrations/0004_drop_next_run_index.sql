-- 0004_drop_next_run_index: no query reads tasks by next_run_at (the scheduler keeps the due
-- times in memory and loads the tasks by id), yet every recorded run moved the task's entry in
-- this index: one more page written per run, at a random place once there are many tasks.
DROP INDEX IF EXISTS tasks_next_run_at;
