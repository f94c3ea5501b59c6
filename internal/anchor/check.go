package anchor

import (
	"context"
	"fmt"
	"time"

	"braid/internal/errs"
	"braid/internal/events"
)

// Result is the check of one stored anchor against the log.
type Result struct {
	ID         int64
	Position   int64
	Hash       [32]byte // the hash stored with the anchor
	Witness    string
	AnchoredAt time.Time
	// OK: the log holds Hash at Position and, when a checker for Witness
	// was given, the receipt checks against that head.
	OK bool
	// Checked: the witness's receipt was checked (and passed when OK).
	Checked bool
	// Unavailable: a checker was given but the witness could not be asked
	// (node or network down); neither proof nor disproof. OK is false.
	Unavailable bool
	Reason      string
}

// CheckAll checks every stored anchor, oldest first: the event at its
// position must exist and carry its hash, and its receipt must check
// against that head with the witness of the same name in witnesses (a
// checker: RFC3161 with Roots, EVM with a Client). Anchors whose witness has
// no checker are compared with the log only, and say so in Reason.
func CheckAll(ctx context.Context, q events.Querier, witnesses map[string]Witness) ([]Result, error) {
	all, err := List(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]Result, 0, len(all))
	for _, a := range all {
		r := Result{ID: a.ID, Position: a.Head.Position, Hash: a.Head.Hash, Witness: a.Receipt.Witness, AnchoredAt: a.AnchoredAt}
		e, err := events.Get(ctx, q, a.Head.Position)
		switch {
		case errs.Code(err) == errs.NotFound:
			r.Reason = fmt.Sprintf("the log has no event at position %d", a.Head.Position)
			out = append(out, r)
			continue
		case err != nil:
			return nil, fmt.Errorf("check anchor %d: %w", a.ID, err)
		case e.Hash != a.Head.Hash:
			r.Reason = fmt.Sprintf("anchored hash %s, log has %s at position %d", hexHash(a.Head.Hash), hexHash(e.Hash), a.Head.Position)
			out = append(out, r)
			continue
		}
		w, ok := witnesses[a.Receipt.Witness]
		if !ok {
			r.OK = true
			r.Reason = "hash matches the log; receipt not checked: " + missingChecker(a.Receipt.Witness)
			out = append(out, r)
			continue
		}
		err = w.Check(ctx, events.Head{Position: e.Position, Hash: e.Hash}, a.Receipt)
		switch {
		case err == nil:
			r.OK, r.Checked = true, true
			r.Reason = "hash matches the log; receipt checked by " + a.Receipt.Witness
		case Refused(err):
			r.Reason = "receipt does not check: " + errs.Message(err)
		default:
			r.Unavailable = true
			r.Reason = "receipt could not be checked: " + err.Error()
		}
		out = append(out, r)
	}
	return out, nil
}

func missingChecker(witness string) string {
	switch witness {
	case RFC3161Name:
		return "no --tsa-roots given"
	case EVMName:
		return "no --rpc-url given"
	}
	return "no checker for witness " + witness
}
