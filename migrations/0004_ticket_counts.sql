-- +goose Up
-- Ticket counts per status, kept by the tickets projection so the list's
-- unfiltered counts do not scan every ticket.
CREATE TABLE ticket_counts (
    status TEXT PRIMARY KEY,
    n      INTEGER NOT NULL
);
INSERT INTO ticket_counts (status, n) SELECT status, COUNT(*) FROM tickets GROUP BY status;

-- +goose Down
DROP TABLE ticket_counts;
