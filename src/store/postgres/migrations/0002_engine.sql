-- 0002_engine (PostgreSQL): the per-task job count the pruner reads, as in the SQLite schema
-- (kept by record_runs and prune; cascaded deletes need no bookkeeping).

ALTER TABLE tasks ADD COLUMN job_count BIGINT NOT NULL DEFAULT 0;
UPDATE tasks SET job_count = (SELECT count(*) FROM jobs WHERE jobs.task_id = tasks.id);
