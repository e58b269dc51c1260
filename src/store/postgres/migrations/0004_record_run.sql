-- 0004_record_run: what record_runs does for one run, as one server-side call, so that a worker
-- sends a whole batch of runs in one pipelined round trip instead of four or five statements
-- per run, each waiting for the last. Same steps as before, in the same order: the task's row
-- (already locked by the batch), the document (deduplicated per task by content hash), the
-- job (dropped whole if its (task, due time) was recorded first), then the task's run state.
CREATE FUNCTION fetchd_record_run(
  p_task_id bigint, p_attempt bigint, p_scheduled_at bigint, p_started_at bigint,
  p_finished_at bigint, p_duration_ms bigint, p_status text, p_http_status bigint,
  p_error text, p_response_bytes bigint, p_records bigint, p_worker_id text,
  p_content_hash text, p_body text, p_body_bytes bigint, p_update_task boolean,
  p_next_run_at bigint,
  OUT out_job_id bigint, OUT out_data_id bigint, OUT out_changed boolean,
  OUT out_task_missing boolean)
LANGUAGE plpgsql AS $$
DECLARE
  previous_data_id bigint;
  inserted_data boolean := false;
  succeeded boolean := p_status = 'succeeded';
BEGIN
  out_job_id := 0;
  out_changed := false;
  out_task_missing := false;
  SELECT coalesce(last_data_id, 0) INTO previous_data_id FROM tasks WHERE id = p_task_id;
  IF NOT FOUND THEN
    out_task_missing := true;
    RETURN;
  END IF;
  IF succeeded AND p_body IS NOT NULL AND p_content_hash IS NOT NULL THEN
    SELECT id INTO out_data_id FROM data
      WHERE task_id = p_task_id AND content_hash = p_content_hash;
    IF FOUND THEN
      out_changed := out_data_id <> previous_data_id;
    ELSE
      INSERT INTO data (task_id, content_hash, body, bytes, records, created_at)
        VALUES (p_task_id, p_content_hash, p_body::json, p_body_bytes, p_records,
                coalesce(p_finished_at, p_started_at, p_scheduled_at))
        RETURNING id INTO out_data_id;
      out_changed := true;
      inserted_data := true;
    END IF;
  END IF;
  INSERT INTO jobs (task_id, attempt, scheduled_at, started_at, finished_at, duration_ms, status,
                    http_status, error, response_bytes, records, changed, worker_id, data_id)
    VALUES (p_task_id, p_attempt, p_scheduled_at, p_started_at, p_finished_at, p_duration_ms,
            p_status, p_http_status, p_error, p_response_bytes, p_records,
            CASE WHEN out_data_id IS NULL THEN NULL ELSE out_changed END, p_worker_id,
            out_data_id)
    ON CONFLICT (task_id, scheduled_at) DO NOTHING
    RETURNING id INTO out_job_id;
  IF out_job_id IS NULL THEN
    -- Another run of this (task, due time) was recorded first: this one is dropped whole,
    -- including a document only it would have referenced.
    IF inserted_data THEN
      DELETE FROM data WHERE id = out_data_id;
    END IF;
    out_job_id := 0;
    out_data_id := NULL;
    out_changed := false;
    RETURN;
  END IF;
  IF p_update_task THEN
    UPDATE tasks SET last_job_id = out_job_id, last_status = p_status,
                     last_run_at = p_started_at, last_duration_ms = p_duration_ms,
                     last_error = p_error, last_data_id = coalesce(out_data_id, last_data_id),
                     consecutive_failures = CASE WHEN succeeded THEN 0
                       WHEN p_status IN ('failed', 'timed_out') THEN consecutive_failures + 1
                       ELSE consecutive_failures END,
                     -- A task paused while its run was in flight stays without a next run.
                     next_run_at = CASE WHEN paused THEN NULL ELSE p_next_run_at END,
                     job_count = job_count + 1
      WHERE id = p_task_id;
  ELSE
    UPDATE tasks SET job_count = job_count + 1 WHERE id = p_task_id;
  END IF;
END $$;
