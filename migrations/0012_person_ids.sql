-- +goose Up
-- Opaque person ids (internal/auth/people_lookup.go). users.id is the
-- stable id events name as actor and aggregate id; users.username is the
-- name a person signs in with, which username_changed may change. People
-- registered before this migration keep their username as their id (the
-- events already in the log name them so), hence the backfill.
ALTER TABLE users ADD COLUMN username TEXT NOT NULL DEFAULT '';
UPDATE users SET username = id;
CREATE UNIQUE INDEX users_username_idx ON users(username COLLATE NOCASE);

-- Usernames a person held before a rename: kept reserved for them (only
-- they may take one back), so a name seen in old pages, mentions or links
-- never comes to mean someone else. Rebuilt by replay with users.
CREATE TABLE former_usernames (
    username   TEXT PRIMARY KEY COLLATE NOCASE,
    user_id    TEXT NOT NULL,
    changed_at TEXT NOT NULL
);

-- The names @mentions are matched against, beside the ids notify keeps.
ALTER TABLE notify_people ADD COLUMN username TEXT NOT NULL DEFAULT '';
UPDATE notify_people SET username = user_id;
CREATE INDEX notify_people_username_idx ON notify_people(username);

-- +goose Down
DROP INDEX notify_people_username_idx;
ALTER TABLE notify_people DROP COLUMN username;
DROP TABLE former_usernames;
DROP INDEX users_username_idx;
ALTER TABLE users DROP COLUMN username;
