package anchor

import (
	"context"
	"fmt"
	"strings"
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

	// What the check found, for callers that word it themselves.
	Found   [32]byte // the log's hash at Position, when it has an event there
	Missing bool     // the log has no event at Position
	LogEnd  int64    // the log's last position when checked
	Refusal string   // why the witness refused the receipt, when it did
	Receipt string   // what became of the receipt: checked, not checked (why), could not be checked (why)
}

// Problem says what is wrong with a failed anchor in one line, naming it;
// "" when the anchor is OK or only could not be checked.
func (r Result) Problem() string {
	switch {
	case r.OK || r.Unavailable:
		return ""
	case r.Missing:
		return fmt.Sprintf("anchor #%d (witness %s) expected hash %s, found none: the log ends at position %d", r.ID, r.Witness, hexHash(r.Hash), r.LogEnd)
	case r.Found != r.Hash:
		return fmt.Sprintf("anchor #%d (witness %s) expected hash %s, found %s", r.ID, r.Witness, hexHash(r.Hash), hexHash(r.Found))
	}
	return fmt.Sprintf("anchor #%d (witness %s) receipt does not hold for hash %s: %s", r.ID, r.Witness, hexHash(r.Hash), r.Refusal)
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
	head, err := events.ReadHead(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]Result, 0, len(all))
	for _, a := range all {
		r, err := check(ctx, q, a, witnesses, head.Position)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Check checks one stored anchor as CheckAll does.
func Check(ctx context.Context, q events.Querier, a Anchor, witnesses map[string]Witness) (Result, error) {
	head, err := events.ReadHead(ctx, q)
	if err != nil {
		return Result{}, err
	}
	return check(ctx, q, a, witnesses, head.Position)
}

func check(ctx context.Context, q events.Querier, a Anchor, witnesses map[string]Witness, end int64) (Result, error) {
	r := Result{ID: a.ID, Position: a.Head.Position, Hash: a.Head.Hash, Witness: a.Receipt.Witness, AnchoredAt: a.AnchoredAt, LogEnd: end}
	e, err := events.Get(ctx, q, a.Head.Position)
	switch {
	case errs.Code(err) == errs.NotFound:
		r.Missing = true
		r.Reason = fmt.Sprintf("the log has no event at position %d", a.Head.Position)
		return r, nil
	case err != nil:
		return r, fmt.Errorf("check anchor %d: %w", a.ID, err)
	}
	r.Found = e.Hash
	if e.Hash != a.Head.Hash {
		r.Reason = fmt.Sprintf("anchored hash %s, log has %s at position %d", hexHash(a.Head.Hash), hexHash(e.Hash), a.Head.Position)
		return r, nil
	}
	w, ok := witnesses[a.Receipt.Witness]
	if !ok && strings.HasPrefix(a.Receipt.Witness, TlogName+":") {
		w, ok = witnesses[TlogName]
	}
	if !ok {
		r.OK = true
		r.Receipt = "receipt not checked: " + missingChecker(a.Receipt.Witness)
		r.Reason = "hash matches the log; " + r.Receipt
		return r, nil
	}
	err = w.Check(ctx, events.Head{Position: e.Position, Hash: e.Hash}, a.Receipt)
	switch {
	case err == nil:
		r.OK, r.Checked = true, true
		r.Receipt = "receipt checked by " + a.Receipt.Witness
		r.Reason = "hash matches the log; " + r.Receipt
	case Refused(err):
		r.Refusal = errs.Message(err)
		r.Reason = "receipt does not check: " + r.Refusal
	default:
		r.Unavailable = true
		r.Receipt = "receipt could not be checked: " + err.Error()
		r.Reason = r.Receipt
	}
	return r, nil
}

func missingChecker(witness string) string {
	switch witness {
	case RFC3161Name:
		return "no --tsa-roots given"
	case EVMName:
		return "no --rpc-url given"
	}
	if strings.HasPrefix(witness, TlogName+":") {
		return "no log key to check the checkpoint's signature with (--vkey, or the key file beside the database)"
	}
	return "no checker for witness " + witness
}
