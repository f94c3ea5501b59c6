package main

import (
	"context"
	"fmt"

	"braid/internal/events"
	"braid/internal/web"
)

// checkAnchors checks every recorded anchor against the log: the hash an
// anchor recorded at its position must be the log's hash there, or the log
// was rewritten after it was anchored. A failed anchor is a result with OK
// false and a Problem, not an error; an error means the check could not run.
//
// This is where the witnesses' receipt checks plug in (internal/anchor):
// set Receipt, and clear OK with a Problem when a receipt does not hold.
func checkAnchors(ctx context.Context, db *events.DB) ([]web.AnchorCheck, error) {
	rows, err := db.Read.QueryContext(ctx, `SELECT a.id, a.position, a.hash, a.witness, a.anchored_at, e.hash,
		(SELECT COALESCE(MAX(position), 0) FROM events)
		FROM anchors a LEFT JOIN events e ON e.position = a.position ORDER BY a.position, a.id`)
	if err != nil {
		return nil, fmt.Errorf("check anchors: %w", err)
	}
	defer rows.Close()
	out := []web.AnchorCheck{}
	for rows.Next() {
		var a web.AnchorCheck
		var recorded, found []byte
		var last int64
		if err := rows.Scan(&a.ID, &a.Position, &recorded, &a.Witness, &a.AnchoredAt, &found, &last); err != nil {
			return nil, fmt.Errorf("check anchors: %w", err)
		}
		a.Hash = fmt.Sprintf("%x", recorded)
		switch {
		case found == nil:
			a.Problem = fmt.Sprintf("anchor #%d (witness %s) expected hash %s, found none: the log ends at position %d", a.ID, a.Witness, a.Hash, last)
		case string(found) != string(recorded):
			a.Problem = fmt.Sprintf("anchor #%d (witness %s) expected hash %s, found %x", a.ID, a.Witness, a.Hash, found)
		default:
			a.OK = true
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("check anchors: %w", err)
	}
	return out, nil
}

// anchorFunc adapts checkAnchors for the /verify page's monitor.
func anchorFunc(db *events.DB) web.AnchorFunc {
	return func(ctx context.Context) ([]web.AnchorCheck, error) { return checkAnchors(ctx, db) }
}
