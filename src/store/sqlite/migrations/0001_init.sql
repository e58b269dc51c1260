-- 0001_init: the whole first schema (users, tokens, tasks, jobs, data).
-- Every instant is INTEGER unix milliseconds, UTC. Booleans are INTEGER 0/1.
-- Applied in one transaction by the migrator, which owns schema_migrations.

CREATE TABLE users (
  id            INTEGER PRIMARY KEY,
  username      TEXT    NOT NULL UNIQUE,
  password_hash TEXT    NOT NULL,
  role          TEXT    NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
  disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  created_at    INTEGER NOT NULL
);

-- Only a hash of the bearer secret is stored; the hash is the natural key, hence WITHOUT ROWID.
CREATE TABLE tokens (
  hash       TEXT    PRIMARY KEY,
  user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tokens_user_id ON tokens (user_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

-- AUTOINCREMENT so that the id of a deleted task is never handed out again: a client holding
-- /tasks/7 must not silently reach someone else's new task.
-- last_* summarise the latest finished run so that listing tasks never joins jobs. They carry
-- no foreign keys on purpose: the engine writes them in the same transaction as the job, and
-- a key would cost two more indexes updated on every run and a tasks <-> jobs cycle.
CREATE TABLE tasks (
  id                   INTEGER PRIMARY KEY AUTOINCREMENT,
  owner_id             INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name                 TEXT    NOT NULL,
  url                  TEXT    NOT NULL,
  parameters           TEXT    NOT NULL DEFAULT '{}'
                       CHECK (json_valid(parameters) AND json_type(parameters) = 'object'),
  start_time           INTEGER NOT NULL,
  end_time             INTEGER NOT NULL,
  task_interval        INTEGER NOT NULL CHECK (task_interval >= 1),
  max_execution_time   INTEGER NOT NULL DEFAULT 0 CHECK (max_execution_time >= 0),
  max_attempt          INTEGER NOT NULL DEFAULT 3 CHECK (max_attempt >= 1),
  paused               INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
  consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
  next_run_at          INTEGER,
  last_job_id          INTEGER,
  last_status          TEXT CHECK (last_status IN ('queued', 'running', 'succeeded', 'failed',
                                                   'timed_out', 'skipped')),
  last_run_at          INTEGER,
  last_duration_ms     INTEGER,
  last_error           TEXT,
  last_data_id         INTEGER,
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL
);
-- "my tasks, by id" (keyset pagination) and the owner foreign key's cascade.
CREATE INDEX tasks_owner_id ON tasks (owner_id, id);
-- The scheduler's "what is due next" scan.
CREATE INDEX tasks_next_run_at ON tasks (next_run_at) WHERE next_run_at IS NOT NULL;

-- The documents runs brought back. Identical payloads of one task are stored once: a run whose
-- body hashes to an existing row points at it (and records changed = 0).
CREATE TABLE data (
  id           INTEGER PRIMARY KEY,
  task_id      INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  content_hash TEXT    NOT NULL,
  body         TEXT    NOT NULL,
  bytes        INTEGER NOT NULL CHECK (bytes >= 0),
  records      INTEGER,
  created_at   INTEGER NOT NULL,
  UNIQUE (task_id, content_hash)
);

-- One row per run. UNIQUE (task_id, scheduled_at) is what makes "one run per (task, due time)"
-- hold however many schedulers enqueue: the second insert conflicts instead of running twice.
-- Its index also serves the task foreign key's cascade.
CREATE TABLE jobs (
  id             INTEGER PRIMARY KEY,
  task_id        INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  attempt        INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
  scheduled_at   INTEGER NOT NULL,
  started_at     INTEGER,
  finished_at    INTEGER,
  duration_ms    INTEGER,
  status         TEXT    NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out',
                                   'skipped')),
  http_status    INTEGER,
  error          TEXT,
  response_bytes INTEGER,
  records        INTEGER,
  changed        INTEGER CHECK (changed IN (0, 1)),
  worker_id      TEXT,
  data_id        INTEGER REFERENCES data (id) ON DELETE SET NULL,
  UNIQUE (task_id, scheduled_at)
);
-- "jobs of a task, newest first" and "latest job of a task".
CREATE INDEX jobs_task_id_id ON jobs (task_id, id DESC);
-- Crash recovery: find runs left queued or running without scanning finished history.
CREATE INDEX jobs_unfinished ON jobs (status, scheduled_at) WHERE status IN ('queued', 'running');
-- The data foreign key's SET NULL, so that pruning data does not scan every job.
CREATE INDEX jobs_data_id ON jobs (data_id);
