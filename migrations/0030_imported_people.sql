-- +goose Up
-- People imported from another tracker (internal/importer): a users row
-- with no credentials and no passkey, so it cannot sign in, marked with
-- the tracker it came from. claimed_by is the real person who claimed it
-- (person_claimed): pages name the claimant instead. Both columns are
-- kept by the users projection, so replay rebuilds them.
ALTER TABLE users ADD COLUMN imported_from TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';

-- Which person stands for which account of which tracker, so a second
-- import names the same person. Rebuilt by replay from person_imported.
CREATE TABLE imported_people (
    source    TEXT NOT NULL,
    host      TEXT NOT NULL,
    source_id TEXT NOT NULL,
    login     TEXT NOT NULL,
    person_id TEXT NOT NULL,
    PRIMARY KEY (source, host, source_id)
);

-- +goose Down
DROP TABLE imported_people;
ALTER TABLE users DROP COLUMN claimed_by;
ALTER TABLE users DROP COLUMN imported_from;
