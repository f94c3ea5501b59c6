package auth

import (
	"context"
	"fmt"
	"time"

	"braid/internal/events"
)

// ActiveSessions counts the sessions not yet expired at now (signed in or
// not: a visitor's session holds its CSRF secret too), for metrics. The
// store keeps expiry as a Julian day, as scs's sqlite3store writes it.
func ActiveSessions(ctx context.Context, q events.Querier, now time.Time) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions WHERE expiry > julianday(?)`,
		now.UTC().Format("2006-01-02T15:04:05.999")).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count sessions: %w", err)
	}
	return n, nil
}
