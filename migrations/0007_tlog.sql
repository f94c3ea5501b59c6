-- +goose Up
-- The transparency tree over the braid (internal/tlog): every stored hash
-- of the RFC 6962 tree whose leaf i is SHA-256(0x00 || hash of the event at
-- position i+1), at x/mod tlog's StoredHashIndex. Derived data: written in
-- the writer's transaction with the events, rebuilt by `web replay`,
-- checked by `web verify`.
CREATE TABLE tlog_hashes (
    id   INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
);

-- Every checkpoint the log signed (C2SP tlog-checkpoint): kept, never
-- rewritten, so what was once served can be shown again.
CREATE TABLE checkpoints (
    size      INTEGER PRIMARY KEY,
    root      BLOB NOT NULL,
    note      TEXT NOT NULL,
    signed_at TEXT NOT NULL
);

-- +goose Down
DROP TABLE checkpoints;
DROP TABLE tlog_hashes;
