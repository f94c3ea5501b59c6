-- +goose Up
-- Attachments (internal/attach, docs/attachments.md). The bytes of each
-- file live here, outside the events table, under their SHA-256: the
-- attachment_added event carries that hash, so the braid covers the file
-- and `web verify` checks the bytes against it. Blobs are not a
-- projection: replay leaves them alone, export writes them beside the log.
CREATE TABLE blobs (
    sha256       TEXT PRIMARY KEY,        -- 64 lowercase hex digits of the bytes
    size         INTEGER NOT NULL,
    content_type TEXT    NOT NULL,        -- the allow-listed type sniffed at upload
    data         BLOB    NOT NULL,
    created_at   TEXT    NOT NULL
);

-- Projection of attachment_added / attachment_removed: which ticket (and
-- comment) shows which file under which name. Rebuilt by replay.
CREATE TABLE attachments (
    ticket_id    INTEGER NOT NULL,
    position     INTEGER NOT NULL,        -- log position of the attachment_added event
    sha256       TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    comment_id   INTEGER NOT NULL DEFAULT 0, -- 0: on the ticket itself
    author       TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    PRIMARY KEY (ticket_id, position)
);
CREATE INDEX attachments_sha_idx ON attachments(sha256);

-- +goose Down
DROP TABLE attachments;
DROP TABLE blobs;
