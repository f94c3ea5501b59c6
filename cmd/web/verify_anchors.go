package main

import (
	"context"
	"fmt"

	"braid/internal/anchor"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/web"
)

// checkAnchors checks every recorded anchor against the log: the hash an
// anchor recorded at its position must be the log's hash there, or the log
// was rewritten after it was anchored. A failed anchor is a result with OK
// false and a Problem, not an error; an error means the check could not run.
//
// When a checker for the anchor's witness is given (--tsa-roots for
// rfc3161, --rpc-url for evm), the receipt is checked too: a receipt that
// does not hold for the log's head makes the anchor fail. A witness that
// cannot be reached leaves the receipt unchecked and unavailable true.
func checkAnchors(ctx context.Context, db *events.DB, checkers map[string]anchor.Witness) (out []web.AnchorCheck, unavailable bool, err error) {
	rows, err := db.Read.QueryContext(ctx, `SELECT a.id, a.position, a.hash, a.witness, a.anchored_at, e.hash,
		(SELECT COALESCE(MAX(position), 0) FROM events)
		FROM anchors a LEFT JOIN events e ON e.position = a.position ORDER BY a.position, a.id`)
	if err != nil {
		return nil, false, fmt.Errorf("check anchors: %w", err)
	}
	defer rows.Close()
	out = []web.AnchorCheck{}
	for rows.Next() {
		var a web.AnchorCheck
		var recorded, found []byte
		var last int64
		if err := rows.Scan(&a.ID, &a.Position, &recorded, &a.Witness, &a.AnchoredAt, &found, &last); err != nil {
			return nil, false, fmt.Errorf("check anchors: %w", err)
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
		return nil, false, fmt.Errorf("check anchors: %w", err)
	}
	rows.Close()
	for i := range out {
		a := &out[i]
		if !a.OK {
			continue
		}
		w, ok := checkers[a.Witness]
		if !ok {
			a.Receipt = "receipt not checked: " + missingChecker(a.Witness)
			continue
		}
		stored, err := anchor.Get(ctx, db.Read, a.ID)
		if err != nil {
			return nil, false, fmt.Errorf("check anchor %d: %w", a.ID, err)
		}
		switch err := w.Check(ctx, stored.Head, stored.Receipt); {
		case err == nil:
			a.Receipt = "receipt checked by " + a.Witness
		case anchor.Refused(err):
			a.OK = false
			a.Problem = fmt.Sprintf("anchor #%d (witness %s) receipt does not hold for hash %s: %s", a.ID, a.Witness, a.Hash, errs.Message(err))
		default:
			unavailable = true
			a.Receipt = "receipt could not be checked: " + err.Error()
		}
	}
	return out, unavailable, nil
}

func missingChecker(witness string) string {
	switch witness {
	case anchor.RFC3161Name:
		return "no --tsa-roots given"
	case anchor.EVMName:
		return "no --rpc-url given"
	}
	return "no checker for witness " + witness
}

// anchorFunc adapts checkAnchors for the /verify page's monitor.
func anchorFunc(db *events.DB, checkers map[string]anchor.Witness) web.AnchorFunc {
	return func(ctx context.Context) ([]web.AnchorCheck, error) {
		out, _, err := checkAnchors(ctx, db, checkers)
		return out, err
	}
}
