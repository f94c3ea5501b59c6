-- +goose Up
-- Passkeys (WebAuthn): outside the log on purpose, like credentials. The
-- log holds only that a passkey was added or removed (passkey_added,
-- passkey_removed: a name and the SHA-256 of the credential id); the
-- public keys and sign counts live here, and replay leaves them alone.

-- Each person's WebAuthn user handle: 32 random bytes, never the username
-- (a username is personal data and may change; the handle is kept by the
-- authenticator).
CREATE TABLE passkey_handles (
    user_id TEXT PRIMARY KEY,
    handle  BLOB NOT NULL UNIQUE
);

CREATE TABLE passkeys (
    id_hash      TEXT PRIMARY KEY,      -- hex SHA-256 of the credential id, as in the log
    credential_id BLOB NOT NULL UNIQUE,
    user_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    credential   TEXT NOT NULL,         -- the go-webauthn Credential as JSON: public key, sign count, flags
    created_at   TEXT NOT NULL,
    last_used_at TEXT NOT NULL DEFAULT '',
    last_challenge TEXT NOT NULL DEFAULT '' -- the last sign-in's challenge: an answer signs in once
);
CREATE INDEX passkeys_user_idx ON passkeys(user_id);

-- +goose Down
DROP INDEX passkeys_user_idx;
DROP TABLE passkeys;
DROP TABLE passkey_handles;
