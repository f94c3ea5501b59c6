-- +goose Up
-- Braid v2 (docs/braid.md): a new event's payload lives in payloads, keyed
-- by position, with a 32-byte random salt; the event row keeps only the
-- commitment SHA-256("braid/v2 payload\n" || salt || data), which its hash
-- covers, and data ''. Erasing a payload (ErasePayload) replaces data with
-- the kept remnant, drops the salt and records the erased event's position
-- in erased_by; the braid stays valid. v1 rows keep format 1, commitment
-- NULL and their data in events. The append-only triggers stay: ALTER TABLE
-- ADD COLUMN does not fire them.
ALTER TABLE events ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
ALTER TABLE events ADD COLUMN commitment BLOB;
CREATE TABLE payloads (
    position  INTEGER PRIMARY KEY,
    salt      BLOB,
    data      TEXT NOT NULL,
    erased_by INTEGER
);

-- +goose Down
DROP TABLE payloads;
ALTER TABLE events DROP COLUMN commitment;
ALTER TABLE events DROP COLUMN format;
