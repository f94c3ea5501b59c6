package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"braid/internal/errs"
	"braid/internal/events"
)

// IDByUsername resolves the username a person types in a form (grant a
// role to "bob") to the id people are keyed by everywhere else; not_found
// when nobody has it. Today the id is the username.
func IDByUsername(ctx context.Context, q events.Querier, username string) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM users WHERE id = ?`, username).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errs.E(errs.NotFound, "There is nobody called %q.", username)
	}
	if err != nil {
		return "", fmt.Errorf("look up person: %w", err)
	}
	return id, nil
}
