-- +goose Up
-- What the operator's background jobs last did, outside the log on purpose
-- (internal/ops): the latest verify run of `serve`, the latest scheduled
-- export. `web doctor` reads it to say how long ago each last happened.
CREATE TABLE ops_runs (
    kind     TEXT PRIMARY KEY,          -- verify, export
    at       TEXT NOT NULL,             -- the latest run, UTC RFC 3339
    ok       INTEGER NOT NULL,          -- 1 when it succeeded (an intact braid, a verified export)
    ok_at    TEXT,                      -- the latest run that succeeded
    position INTEGER NOT NULL DEFAULT 0, -- the head it reached
    detail   TEXT NOT NULL DEFAULT ''   -- a file name, or what went wrong
);

-- +goose Down
DROP TABLE ops_runs;
