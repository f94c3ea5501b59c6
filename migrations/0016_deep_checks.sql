-- +goose Up
-- Each `web verify --deep` (or serve --deep-verify-every) run: the
-- projections rebuilt from the log and compared row by row with the live
-- tables. Not derived from the log: a record of checks, kept for /verify.
CREATE TABLE deep_checks (
    id      INTEGER PRIMARY KEY,
    ran_at  TEXT NOT NULL,    -- RFC 3339, UTC, when it started
    head    INTEGER NOT NULL, -- the log position the tables were compared at
    ok      INTEGER NOT NULL, -- 1: every row equal
    problem TEXT NOT NULL,    -- the first difference, '' when ok
    took_ms INTEGER NOT NULL
);

-- +goose Down
DROP TABLE deep_checks;
