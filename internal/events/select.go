package events

import (
	"context"
	"fmt"
)

// Select reads events with a caller's clause after `FROM events e` (then a
// LEFT JOIN of payloads p: name every column's table) (a
// WHERE, ORDER BY and LIMIT), for reads that filter by what the reader may
// see (internal/access).
func Select(ctx context.Context, q Querier, clause string, args ...any) ([]Event, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+eventColumns+` FROM `+eventsFrom+` `+clause, args...)
	if err != nil {
		return nil, fmt.Errorf("select events: %w", err)
	}
	return scanEvents(rows)
}
