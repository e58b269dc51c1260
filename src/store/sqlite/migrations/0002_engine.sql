-- 0002_engine: what the execution engine needs on top of 0001 (which may already be applied on
-- users' databases, so it is never edited).

-- How many job rows the task has, kept by record_runs (+1 per job) and prune (-n), so that the
-- pruner finds the tasks over retention.jobs_per_task without counting every task's jobs.
-- Cascaded deletes remove the task with its jobs, so they need no bookkeeping.
ALTER TABLE tasks ADD COLUMN job_count INTEGER NOT NULL DEFAULT 0;
UPDATE tasks SET job_count = (SELECT count(*) FROM jobs WHERE jobs.task_id = tasks.id);
