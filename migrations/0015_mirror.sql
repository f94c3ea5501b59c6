-- +goose Up
-- A mirror (`web mirror URL --db COPY`, cmd/web/mirror.go): the one row
-- that marks this database as a read-only, verified copy of another Braid,
-- with the source's key pinned at the first pull and the checkpoint the
-- copy holds. `web serve` on a database with this row serves read-only.
-- Not derived from the log: replay leaves it alone.
CREATE TABLE mirror (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    source       TEXT NOT NULL,    -- the source's base URL
    vkey         TEXT NOT NULL,    -- its log's verifier key (note format)
    origin       TEXT NOT NULL,    -- its checkpoints' origin line
    size         INTEGER NOT NULL, -- the checkpoint held: size, root
    root         BLOB NOT NULL,
    pulled_at    TEXT NOT NULL,    -- last pull that brought the copy up to the source
    attempted_at TEXT NOT NULL,    -- last pull, whatever its outcome
    source_size  INTEGER NOT NULL, -- the size of the source's checkpoint at the last pull
    problem      TEXT NOT NULL DEFAULT '' -- why the last pull was refused or failed; '' when it succeeded
);

-- +goose Down
DROP TABLE mirror;
