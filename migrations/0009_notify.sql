-- +goose Up
-- Projections of notify's events (internal/notify): who watches which
-- ticket, what each person is told, their digest address. Rebuilt by replay.
CREATE TABLE watches (
    ticket_id INTEGER NOT NULL,
    user_id   TEXT    NOT NULL,
    watching  INTEGER NOT NULL, -- 1 watching, 0 unwatched by hand (kept, so an edit's mention does not re-add them)
    PRIMARY KEY (ticket_id, user_id)
);
CREATE INDEX watches_user_idx ON watches(user_id, ticket_id);

-- The people @mentions are matched against (a copy of the user ids, so the
-- projection reads only its own tables, as replay rebuilds it alone).
CREATE TABLE notify_people (
    user_id TEXT PRIMARY KEY
);

CREATE TABLE notifications (
    user_id    TEXT    NOT NULL, -- who is told
    position   INTEGER NOT NULL, -- the event that tells it
    ticket_id  INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    kind       TEXT    NOT NULL, -- the event's type
    comment_id INTEGER NOT NULL DEFAULT 0,
    subject    TEXT    NOT NULL DEFAULT '', -- the assignee, for assignments
    mentioned  INTEGER NOT NULL DEFAULT 0,
    occurred_at TEXT   NOT NULL,
    read       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, position)
);
CREATE INDEX notifications_unread_idx ON notifications(user_id, read, position);

CREATE TABLE notify_emails (
    user_id TEXT PRIMARY KEY,
    email   TEXT NOT NULL
);

-- Outside the log on purpose: when each person was last sent a digest,
-- and up to which position. Sending mail is a side effect, not a fact of
-- the tracker; replay leaves this table alone.
CREATE TABLE mail_digests (
    user_id TEXT PRIMARY KEY,
    up_to   INTEGER NOT NULL,
    sent_at TEXT    NOT NULL
);

-- +goose Down
DROP TABLE mail_digests;
DROP TABLE notify_emails;
DROP TABLE notifications;
DROP TABLE notify_people;
DROP TABLE watches;
