-- +goose Up
-- Responsive tasks (several outputs, docs/responsive.md): the new final
-- status completed_with_errors, and a table of each task's variants.
--
-- The status CHECK of 00001 must accept the new status. SQLite cannot alter
-- a constraint, so the tasks table is rebuilt, the same way on both
-- databases, with webhook_deliveries (which references it):
--   - the old tables are renamed first: on PostgreSQL that takes their
--     exclusive lock until the migration commits, so no write made while
--     it copies can be lost (SQLite's write transaction is exclusive
--     anyway); renaming tasks makes both databases point
--     webhook_deliveries_old's reference at tasks_old;
--   - the new tables are created under the old names and filled;
--   - webhook_deliveries_old is dropped before tasks_old, so that dropping
--     tasks_old cascades to nothing: with SQLite's foreign keys on, DROP
--     TABLE deletes every row first, and ON DELETE CASCADE would empty the
--     deliveries.
-- On PostgreSQL the renamed tables keep their constraint names (tasks_pkey,
-- tasks_status_check, …) until they are dropped, so the new tables' get a
-- suffix (tasks_pkey1, tasks_status_check1, …): a later migration that
-- names one must look it up.
ALTER TABLE tasks RENAME TO tasks_old;
ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_old;

CREATE TABLE tasks (
    id                TEXT PRIMARY KEY,
    image_id          TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    image_sha256      TEXT NOT NULL,
    owner             TEXT NOT NULL DEFAULT '',
    pipeline          TEXT NOT NULL,
    pipeline_hash     TEXT NOT NULL,
    status            TEXT NOT NULL
        CHECK (status IN ('pending', 'processing', 'completed', 'completed_with_errors', 'failed', 'canceled')),
    priority          INTEGER NOT NULL,
    attempt           INTEGER NOT NULL DEFAULT 0,
    error_code        TEXT NOT NULL DEFAULT '',
    error_message     TEXT NOT NULL DEFAULT '',
    webhook_url       TEXT NOT NULL DEFAULT '',
    idempotency_key   TEXT NOT NULL DEFAULT '',
    -- River's job; no foreign key: River deletes finished jobs on its own schedule.
    job_id            BIGINT NOT NULL,
    result_blob_key   TEXT NOT NULL DEFAULT '',
    result_format     TEXT NOT NULL DEFAULT '',
    result_media_type TEXT NOT NULL DEFAULT '',
    result_width      INTEGER NOT NULL DEFAULT 0,
    result_height     INTEGER NOT NULL DEFAULT 0,
    result_bytes      BIGINT NOT NULL DEFAULT 0,
    result_outputs    TEXT NOT NULL DEFAULT '',
    created_at        TIMESTAMPTZ NOT NULL,
    started_at        TIMESTAMPTZ,
    finished_at       TIMESTAMPTZ
);
INSERT INTO tasks (id, image_id, image_sha256, owner, pipeline, pipeline_hash, status, priority, attempt,
    error_code, error_message, webhook_url, idempotency_key, job_id, result_blob_key, result_format,
    result_media_type, result_width, result_height, result_bytes, result_outputs, created_at,
    started_at, finished_at)
SELECT id, image_id, image_sha256, owner, pipeline, pipeline_hash, status, priority, attempt,
    error_code, error_message, webhook_url, idempotency_key, job_id, result_blob_key, result_format,
    result_media_type, result_width, result_height, result_bytes, result_outputs, created_at,
    started_at, finished_at
FROM tasks_old;

CREATE TABLE webhook_deliveries (
    id          TEXT PRIMARY KEY,
    task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    -- 0 when no response was received.
    status_code INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT '',
    duration_ms BIGINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL
);
INSERT INTO webhook_deliveries (id, task_id, url, event_id, attempt, status_code, error, duration_ms, created_at)
SELECT id, task_id, url, event_id, attempt, status_code, error, duration_ms, created_at FROM webhook_deliveries_old;

DROP TABLE webhook_deliveries_old;
DROP TABLE tasks_old;

-- The indexes of 00001 and 00002, dropped with the old tables.
CREATE INDEX tasks_owner_created_idx ON tasks (owner, created_at, id);
CREATE INDEX tasks_owner_status_created_idx ON tasks (owner, status, created_at, id);
CREATE INDEX tasks_image_created_idx ON tasks (image_id, created_at, id);
CREATE INDEX tasks_result_reuse_idx ON tasks (image_sha256, pipeline_hash, status);
CREATE INDEX tasks_result_blob_key_idx ON tasks (result_blob_key) WHERE result_blob_key <> '';
CREATE UNIQUE INDEX tasks_idempotency_idx ON tasks (owner, idempotency_key)
    WHERE idempotency_key <> '';
CREATE INDEX webhook_deliveries_task_created_idx ON webhook_deliveries (task_id, created_at, id);

-- One row per variant of a responsive task, in index order, written by
-- CompleteTask with the task's result, deleted with the task. A failed
-- variant has an error_code and no blob.
CREATE TABLE task_variants (
    task_id       TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    variant_index INTEGER NOT NULL,
    blob_key      TEXT NOT NULL DEFAULT '',
    format        TEXT NOT NULL,
    media_type    TEXT NOT NULL DEFAULT '',
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    bytes         BIGINT NOT NULL DEFAULT 0,
    outputs       TEXT NOT NULL DEFAULT '',
    error_code    TEXT NOT NULL DEFAULT '',
    error_message TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (task_id, variant_index)
);

-- The blob reference rule: a variant's blob is referenced like a result's.
CREATE INDEX task_variants_blob_key_idx ON task_variants (blob_key) WHERE blob_key <> '';

-- +goose Down
DROP TABLE task_variants;

-- A task completed with errors reads as completed to the older schema (its
-- variants' rows are gone with task_variants).
ALTER TABLE tasks RENAME TO tasks_old;
ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_old;

CREATE TABLE tasks (
    id                TEXT PRIMARY KEY,
    image_id          TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    image_sha256      TEXT NOT NULL,
    owner             TEXT NOT NULL DEFAULT '',
    pipeline          TEXT NOT NULL,
    pipeline_hash     TEXT NOT NULL,
    status            TEXT NOT NULL
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'canceled')),
    priority          INTEGER NOT NULL,
    attempt           INTEGER NOT NULL DEFAULT 0,
    error_code        TEXT NOT NULL DEFAULT '',
    error_message     TEXT NOT NULL DEFAULT '',
    webhook_url       TEXT NOT NULL DEFAULT '',
    idempotency_key   TEXT NOT NULL DEFAULT '',
    -- River's job; no foreign key: River deletes finished jobs on its own schedule.
    job_id            BIGINT NOT NULL,
    result_blob_key   TEXT NOT NULL DEFAULT '',
    result_format     TEXT NOT NULL DEFAULT '',
    result_media_type TEXT NOT NULL DEFAULT '',
    result_width      INTEGER NOT NULL DEFAULT 0,
    result_height     INTEGER NOT NULL DEFAULT 0,
    result_bytes      BIGINT NOT NULL DEFAULT 0,
    result_outputs    TEXT NOT NULL DEFAULT '',
    created_at        TIMESTAMPTZ NOT NULL,
    started_at        TIMESTAMPTZ,
    finished_at       TIMESTAMPTZ
);
INSERT INTO tasks (id, image_id, image_sha256, owner, pipeline, pipeline_hash, status, priority, attempt,
    error_code, error_message, webhook_url, idempotency_key, job_id, result_blob_key, result_format,
    result_media_type, result_width, result_height, result_bytes, result_outputs, created_at,
    started_at, finished_at)
SELECT id, image_id, image_sha256, owner, pipeline, pipeline_hash, CASE status WHEN 'completed_with_errors' THEN 'completed' ELSE status END, priority, attempt,
    error_code, error_message, webhook_url, idempotency_key, job_id, result_blob_key, result_format,
    result_media_type, result_width, result_height, result_bytes, result_outputs, created_at,
    started_at, finished_at
FROM tasks_old;

CREATE TABLE webhook_deliveries (
    id          TEXT PRIMARY KEY,
    task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    -- 0 when no response was received.
    status_code INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT '',
    duration_ms BIGINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL
);
INSERT INTO webhook_deliveries (id, task_id, url, event_id, attempt, status_code, error, duration_ms, created_at)
SELECT id, task_id, url, event_id, attempt, status_code, error, duration_ms, created_at FROM webhook_deliveries_old;

DROP TABLE webhook_deliveries_old;
DROP TABLE tasks_old;

-- The indexes of 00001 and 00002, dropped with the old tables.
CREATE INDEX tasks_owner_created_idx ON tasks (owner, created_at, id);
CREATE INDEX tasks_owner_status_created_idx ON tasks (owner, status, created_at, id);
CREATE INDEX tasks_image_created_idx ON tasks (image_id, created_at, id);
CREATE INDEX tasks_result_reuse_idx ON tasks (image_sha256, pipeline_hash, status);
CREATE INDEX tasks_result_blob_key_idx ON tasks (result_blob_key) WHERE result_blob_key <> '';
CREATE UNIQUE INDEX tasks_idempotency_idx ON tasks (owner, idempotency_key)
    WHERE idempotency_key <> '';
CREATE INDEX webhook_deliveries_task_created_idx ON webhook_deliveries (task_id, created_at, id);
