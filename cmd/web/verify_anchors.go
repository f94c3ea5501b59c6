package main

import (
	"context"

	"braid/internal/anchor"
	"braid/internal/events"
	"braid/internal/web"
)

// checkAnchors checks every recorded anchor against the log with
// anchor.CheckAll: the hash an anchor recorded at its position must be the
// log's hash there, or the log was rewritten after it was anchored; with a
// checker for its witness (--tsa-roots, --rpc-url) its receipt must hold
// for that head too. A failed anchor is a result with OK false and a
// Problem, not an error; unavailable says a witness could not be reached.
func checkAnchors(ctx context.Context, db *events.DB, checkers map[string]anchor.Witness) (out []web.AnchorCheck, unavailable bool, err error) {
	results, err := anchor.CheckAll(ctx, db.Read, checkers)
	if err != nil {
		return nil, false, err
	}
	out = make([]web.AnchorCheck, len(results))
	for i, r := range results {
		out[i] = web.AnchorCheck{ID: r.ID, Position: r.Position, Witness: r.Witness, Hash: events.Hex(r.Hash),
			AnchoredAt: r.AnchoredAt.UTC().Format(events.TimeFormat), OK: r.OK, Problem: r.Problem(), Receipt: r.Receipt}
		unavailable = unavailable || r.Unavailable
	}
	return out, unavailable, nil
}

// anchorFunc adapts checkAnchors for the /verify page's monitor.
func anchorFunc(db *events.DB, checkers map[string]anchor.Witness) web.AnchorFunc {
	return func(ctx context.Context) ([]web.AnchorCheck, error) {
		out, _, err := checkAnchors(ctx, db, checkers)
		return out, err
	}
}
