-- +goose Up
CREATE TABLE images (
    id              TEXT PRIMARY KEY,
    owner           TEXT NOT NULL DEFAULT '',
    filename        TEXT NOT NULL DEFAULT '',
    media_type      TEXT NOT NULL,
    format          TEXT NOT NULL,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    frames          INTEGER NOT NULL,
    bytes           BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    orientation     INTEGER NOT NULL DEFAULT 0,
    blob_key        TEXT NOT NULL,
    idempotency_key TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL
);

-- ListImages: WHERE owner = ? ORDER BY created_at DESC, id DESC.
CREATE INDEX images_owner_created_idx ON images (owner, created_at, id);
-- The blob reference rule.
CREATE INDEX images_blob_key_idx ON images (blob_key);
CREATE UNIQUE INDEX images_idempotency_idx ON images (owner, idempotency_key)
    WHERE idempotency_key <> '';

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

-- ListTasks: WHERE owner = ? [AND status = ?] ORDER BY created_at DESC, id DESC.
CREATE INDEX tasks_owner_created_idx ON tasks (owner, created_at, id);
CREATE INDEX tasks_owner_status_created_idx ON tasks (owner, status, created_at, id);
-- ListTasks by image, and the cascade from images.
CREATE INDEX tasks_image_created_idx ON tasks (image_id, created_at, id);
-- FindResult.
CREATE INDEX tasks_result_reuse_idx ON tasks (image_sha256, pipeline_hash, status);
-- The blob reference rule.
CREATE INDEX tasks_result_blob_key_idx ON tasks (result_blob_key) WHERE result_blob_key <> '';
CREATE UNIQUE INDEX tasks_idempotency_idx ON tasks (owner, idempotency_key)
    WHERE idempotency_key <> '';

-- +goose Down
DROP TABLE tasks;
DROP TABLE images;
