-- +goose Up
-- What each command was (its kind and input, hashed: events.Fingerprint),
-- kept beside every event it appended so that a command_id sent again counts
-- as a repeat only for the same command from the same actor. Outside the
-- hashed fields and the export on purpose; '' for events appended before
-- this column existed or imported from an export (those match on actor).
ALTER TABLE events ADD COLUMN command_fingerprint TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE events DROP COLUMN command_fingerprint;
