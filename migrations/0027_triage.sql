-- +goose Up
-- Triage (internal/tickets): the list sorts by recently updated (the
-- default), created and most commented, and filters by author; these
-- indexes let each order read one page without sorting every ticket.
-- updated_at and comment_count are kept by the tickets projection since
-- 0003, so replay rebuilds them as before.
CREATE INDEX tickets_updated_idx ON tickets(status, updated_at, id);
CREATE INDEX tickets_updated_all_idx ON tickets(updated_at, id);
CREATE INDEX tickets_comments_idx ON tickets(status, comment_count, id);
CREATE INDEX tickets_comments_all_idx ON tickets(comment_count, id);
CREATE INDEX tickets_author_idx ON tickets(author, status, id);

-- Ticket counts per project and status, kept by the tickets projection
-- beside ticket_counts, so the list of someone who sees only some
-- projects counts its open and closed tickets without scanning them.
CREATE TABLE ticket_project_counts (
    project TEXT NOT NULL,
    status  TEXT NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (project, status)
);
INSERT INTO ticket_project_counts (project, status, n) SELECT project, status, COUNT(*) FROM tickets GROUP BY project, status;

-- Saved views: a person's named list queries (view_saved / view_deleted on
-- the person's aggregate). Only their owner ever reads them. Rebuilt by
-- replay.
CREATE TABLE saved_views (
    user_id  TEXT NOT NULL,
    name     TEXT NOT NULL,
    query    TEXT NOT NULL,
    saved_at TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
);

-- +goose Down
DROP TABLE saved_views;
DROP TABLE ticket_project_counts;
DROP INDEX tickets_author_idx;
DROP INDEX tickets_comments_all_idx;
DROP INDEX tickets_comments_idx;
DROP INDEX tickets_updated_all_idx;
DROP INDEX tickets_updated_idx;
