-- +goose Up
-- Projection of the webhook events (internal/hooks): each project's
-- webhooks, as their events left them. Rebuilt by replay.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,          -- w_ and 16 hex digits
    project     TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    event_types TEXT    NOT NULL DEFAULT '', -- comma separated; empty: every event
    active      INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT NOT NULL DEFAULT '',
    created_by  TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    since       INTEGER NOT NULL           -- the log position it was created at: deliveries start after it
);
CREATE INDEX webhooks_project_idx ON webhooks(project);

-- Outside the log on purpose: the signing secrets (never in an event),
-- each webhook's checkpoint (the last position handled, so a restart
-- resumes there) with its retry state, and the delivery log. Delivering is
-- a side effect, not a fact of the tracker; replay leaves these alone.
CREATE TABLE webhook_secrets (
    webhook_id TEXT PRIMARY KEY,
    secret     TEXT NOT NULL               -- whsec_ and base64
);
CREATE TABLE webhook_checkpoints (
    webhook_id    TEXT PRIMARY KEY,
    position      INTEGER NOT NULL,        -- every event up to here is delivered (or not for this webhook)
    attempts      INTEGER NOT NULL DEFAULT 0, -- failed attempts at the next event
    next_at       TEXT    NOT NULL DEFAULT '', -- when to try it again
    failing_since TEXT    NOT NULL DEFAULT ''  -- first failure of the current run of failures
);
CREATE TABLE webhook_deliveries (
    id          INTEGER PRIMARY KEY,
    webhook_id  TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    event_type  TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    code        INTEGER NOT NULL DEFAULT 0, -- the receiver's status, 0 when none
    error       TEXT    NOT NULL DEFAULT '',
    redelivery  INTEGER NOT NULL DEFAULT 0,
    at          TEXT    NOT NULL
);
CREATE INDEX webhook_deliveries_idx ON webhook_deliveries(webhook_id, id);
-- Redeliveries asked for on the page, done by the deliverer.
CREATE TABLE webhook_redeliveries (
    webhook_id TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, position)
);

-- +goose Down
DROP TABLE webhook_redeliveries;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_checkpoints;
DROP TABLE webhook_secrets;
DROP TABLE webhooks;
