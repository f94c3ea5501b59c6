package events

import (
	"context"
	"fmt"
)

// Select reads events with a caller's clause after `FROM events e` (a
// WHERE, ORDER BY and LIMIT), for reads that filter by what the reader may
// see (internal/access).
func Select(ctx context.Context, q Querier, clause string, args ...any) ([]Event, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+eventColumns+` FROM events e `+clause, args...)
	if err != nil {
		return nil, fmt.Errorf("select events: %w", err)
	}
	return scanEvents(rows)
}
