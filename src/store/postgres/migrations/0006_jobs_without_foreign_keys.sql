-- 0006_jobs_without_foreign_keys: a recorded run's job row carried two foreign keys, and
-- PostgreSQL checks each with a row trigger that looks up and share-locks the referenced row:
-- a fifth of a batch's time in record_runs, and a WAL record per lock (docs/benchmarks.md).
-- Both guarantees hold without them:
-- - jobs.task_id: record_runs locks the batch's task rows, then inserts only the runs whose
--   task still exists; a task delete takes the same row lock, so it comes entirely before or
--   after a batch. The trigger below deletes a deleted task's jobs, as ON DELETE CASCADE did.
-- - jobs.data_id: a document is only deleted by the pruner, once no job refers to it, and it
--   checks that while holding its task's row lock, so no batch can refer to it meanwhile.
ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_task_id_fkey;
ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_data_id_fkey;

-- Statement-level, with the deleted rows as a transition table: one DELETE on jobs per
-- statement, whether the tasks went one by one (DELETE /tasks/{id}) or with their owner
-- (ON DELETE CASCADE from users). The function's DELETE takes its own snapshot after the
-- tasks' row locks are held, so it sees the jobs of any batch that committed before.
CREATE FUNCTION fetchd_delete_jobs_of_deleted_tasks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM jobs WHERE task_id IN (SELECT id FROM deleted_tasks);
  RETURN NULL;
END $$;

CREATE TRIGGER tasks_delete_jobs AFTER DELETE ON tasks
  REFERENCING OLD TABLE AS deleted_tasks
  FOR EACH STATEMENT EXECUTE FUNCTION fetchd_delete_jobs_of_deleted_tasks();
