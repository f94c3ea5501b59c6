-- +goose Up
-- Personal access tokens (internal/auth/tokens.go). The log holds only
-- that a token was created or revoked (token_created, token_revoked: its
-- id, name, scopes and expiry, never the secret); this projection is
-- rebuilt by replay.
CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,          -- random, never the secret nor derived from it
    user_id    TEXT NOT NULL,             -- the person the token acts as
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL,             -- space separated: read write admin
    project    TEXT NOT NULL DEFAULT '',  -- a bot token limited to one project; '' for all
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX tokens_user_idx ON tokens(user_id);

-- Outside the log on purpose, like credentials: the SHA-256 of each
-- token's secret, so no table holds a working token. Replay leaves it alone.
CREATE TABLE token_secrets (
    token_hash BLOB PRIMARY KEY,
    token_id   TEXT NOT NULL UNIQUE
);

-- +goose Down
DROP TABLE token_secrets;
DROP INDEX tokens_user_idx;
DROP TABLE tokens;
