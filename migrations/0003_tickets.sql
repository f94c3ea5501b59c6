-- +goose Up
-- Projections of the ticket aggregate's events.
CREATE TABLE tickets (
    id            INTEGER PRIMARY KEY,
    title         TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    assignee      TEXT    NOT NULL DEFAULT '',
    author        TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    comment_count INTEGER NOT NULL DEFAULT 0,
    opened_at     TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);
CREATE INDEX tickets_status_idx ON tickets(status, id);
CREATE INDEX tickets_assignee_idx ON tickets(assignee, status, id);

CREATE TABLE ticket_labels (
    ticket_id INTEGER NOT NULL,
    label     TEXT    NOT NULL,
    PRIMARY KEY (ticket_id, label)
);
CREATE INDEX ticket_labels_label_idx ON ticket_labels(label, ticket_id);

CREATE TABLE comments (
    ticket_id  INTEGER NOT NULL,
    id         INTEGER NOT NULL,
    author     TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    edited_at  TEXT    NOT NULL DEFAULT '',
    position   INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, id)
);

CREATE VIRTUAL TABLE tickets_fts USING fts5(title, body);

-- +goose Down
DROP TABLE tickets_fts;
DROP TABLE comments;
DROP TABLE ticket_labels;
DROP TABLE tickets;
