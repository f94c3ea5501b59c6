-- +goose Up
-- The log: the one source of truth. Columns are part of the public contract.
CREATE TABLE events (
    position       INTEGER PRIMARY KEY,
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    event_type     TEXT    NOT NULL,
    schema         INTEGER NOT NULL,
    actor          TEXT    NOT NULL,
    occurred_at    TEXT    NOT NULL,
    command_id     TEXT    NOT NULL,
    command_index  INTEGER NOT NULL DEFAULT 0,
    data           TEXT    NOT NULL,
    parent_hash    BLOB    NOT NULL,
    hash           BLOB    NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, version),
    UNIQUE (command_id, command_index)
);

-- +goose StatementBegin
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE refused');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE refused');
END;
-- +goose StatementEnd

-- Each projection records the log position it has applied up to.
CREATE TABLE projection_checkpoints (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);

-- Receipts from outside witnesses; outside the event model on purpose.
CREATE TABLE anchors (
    id          INTEGER PRIMARY KEY,
    position    INTEGER NOT NULL,
    hash        BLOB    NOT NULL,
    witness     TEXT    NOT NULL,
    receipt     BLOB    NOT NULL,
    details     TEXT    NOT NULL DEFAULT '{}',
    anchored_at TEXT    NOT NULL
);

-- +goose Down
DROP TABLE anchors;
DROP TABLE projection_checkpoints;
DROP TABLE events;
