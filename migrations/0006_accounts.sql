-- +goose Up
-- Outside the log on purpose, like credentials: neither is history.

-- A person's session epoch. A session remembers the epoch it was signed
-- in under; raising the epoch (a password change, "sign out other
-- sessions", a reset) signs out every session that holds an older one.
CREATE TABLE session_epochs (
    user_id TEXT PRIMARY KEY,
    epoch   INTEGER NOT NULL
);

-- One-time password reset links made by `web admin reset-password`: only
-- the SHA-256 of the token is kept, so the table does not hold a working
-- link.
CREATE TABLE password_resets (
    token_hash BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);

-- The profile's recent activity: the last events of one actor.
CREATE INDEX events_actor_idx ON events(actor, position);

-- +goose Down
DROP INDEX events_actor_idx;
DROP TABLE password_resets;
DROP TABLE session_epochs;
