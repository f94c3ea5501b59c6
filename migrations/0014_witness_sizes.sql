-- +goose Up
-- The last tree size each tlog witness (C2SP tlog-witness) acknowledged,
-- by the witness's name as it appears in anchors.witness ("tlog:NAME"):
-- the old size Braid sends with the next add-checkpoint, with the
-- consistency proof from it. Outside the event model, like anchors.
CREATE TABLE witness_sizes (
    witness    TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);

-- +goose Down
DROP TABLE witness_sizes;
