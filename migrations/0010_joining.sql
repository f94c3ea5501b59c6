-- +goose Up
-- Projections of the joining events (internal/auth/joining.go), rebuilt
-- by replay: who holds a site role, the site's settings, invitations.
CREATE TABLE roles (
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL, -- admin
    granted_by TEXT NOT NULL, -- the person who granted it, or system
    granted_at TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
);

CREATE TABLE site_settings (
    name   TEXT PRIMARY KEY, -- registration
    value  TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at TEXT NOT NULL
);

CREATE TABLE invitations (
    id         TEXT PRIMARY KEY, -- random, never the secret nor derived from it
    role       TEXT NOT NULL,    -- member or admin
    note       TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'pending', -- pending, used, revoked
    closed_by  TEXT NOT NULL DEFAULT '',        -- who used or revoked it
    closed_at  TEXT NOT NULL DEFAULT ''
);

-- Outside the log on purpose, like credentials: the SHA-256 of each
-- invitation's secret, so this table does not hold a working link.
-- Replay leaves it alone.
CREATE TABLE invitation_secrets (
    token_hash    BLOB PRIMARY KEY,
    invitation_id TEXT NOT NULL UNIQUE
);

-- +goose Down
DROP TABLE invitation_secrets;
DROP TABLE invitations;
DROP TABLE site_settings;
DROP TABLE roles;
