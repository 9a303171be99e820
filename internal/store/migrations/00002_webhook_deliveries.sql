-- +goose Up
-- One row per webhook delivery attempt (internal/webhook), deleted with its task.
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

-- ListWebhookDeliveries: WHERE task_id = ? ORDER BY created_at, id; and the cascade from tasks.
CREATE INDEX webhook_deliveries_task_created_idx ON webhook_deliveries (task_id, created_at, id);

-- +goose Down
DROP TABLE webhook_deliveries;
