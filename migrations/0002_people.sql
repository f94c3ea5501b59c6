-- +goose Up
-- Projection of user_registered events.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    registered_at TEXT NOT NULL
);

-- Outside the log on purpose: secrets never go into an immutable log.
CREATE TABLE credentials (
    user_id       TEXT PRIMARY KEY,
    password_hash BLOB NOT NULL
);

-- alexedwards/scs sqlite3store.
CREATE TABLE sessions (
    token  TEXT PRIMARY KEY,
    data   BLOB NOT NULL,
    expiry REAL NOT NULL
);
CREATE INDEX sessions_expiry_idx ON sessions(expiry);

-- +goose Down
DROP TABLE sessions;
DROP TABLE credentials;
DROP TABLE users;
