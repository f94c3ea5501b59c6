// Package anchor hands the head of the log (position and hash) to outside
// witnesses and keeps the receipts they give back in the anchors table, so
// that anyone can later show the log already held that head at that time.
//
// A Witness is one kind of outside party: an RFC 3161 timestamp authority
// (rfc3161.go) or an EVM chain (evm.go). The anchors table lives outside
// the event model on purpose: anchoring never appends to the log.
package anchor

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"braid/internal/errs"
	"braid/internal/events"
)

// Witness anchors heads and checks receipts.
//
// Errors from Anchor and Check carry errs.Invalid when the witness answered
// and refused (an error status, a receipt that does not match the head, a
// failed transaction); any other error means the witness could not be asked
// (unreachable, timed out), which is worth retrying.
type Witness interface {
	// Name is the stable name stored in anchors.witness: "rfc3161", "evm".
	Name() string
	// Anchor has the witness attest to head and returns its receipt,
	// already checked to be about head.
	Anchor(ctx context.Context, head events.Head) (Receipt, error)
	// Check verifies that r is a valid receipt for head.
	Check(ctx context.Context, head events.Head, r Receipt) error
}

// Receipt is what a witness gave back.
type Receipt struct {
	Witness string
	// Data is the stored receipt blob: for rfc3161 the DER TimeStampResp
	// exactly as the authority returned it; for evm a small JSON document.
	Data []byte
	// Details are facts read from the receipt, for people (stored as JSON in
	// anchors.details); Check never trusts them, it reads Data.
	Details map[string]string
	// Head, when set, is the head the receipt is about, if not the one the
	// witness was asked for: a tlog witness cosigns the latest signed
	// checkpoint, whose size may trail the braid's head.
	Head *events.Head
}

// Summary renders the details as "key=value" pairs in key order.
func (r Receipt) Summary() string {
	keys := make([]string, 0, len(r.Details))
	for k := range r.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + r.Details[k]
	}
	return strings.Join(parts, " ")
}

// Anchor is one row of the anchors table.
type Anchor struct {
	ID         int64
	Head       events.Head
	Receipt    Receipt
	AnchoredAt time.Time
}

// Record stores a receipt for head, anchored at at, and returns the row.
func Record(ctx context.Context, q events.Querier, head events.Head, r Receipt, at time.Time) (Anchor, error) {
	if r.Head != nil {
		head = *r.Head
	}
	if head.Position <= 0 {
		return Anchor{}, errs.E(errs.Invalid, "cannot record an anchor for position %d", head.Position)
	}
	if r.Witness == "" || len(r.Data) == 0 {
		return Anchor{}, errs.E(errs.Invalid, "cannot record an empty receipt")
	}
	details := r.Details
	if details == nil {
		details = map[string]string{}
	}
	dj, err := json.Marshal(details)
	if err != nil {
		return Anchor{}, fmt.Errorf("record anchor: encode details: %w", err)
	}
	at = at.UTC()
	res, err := q.ExecContext(ctx, `INSERT INTO anchors (position, hash, witness, receipt, details, anchored_at)
		VALUES (?, ?, ?, ?, ?, ?)`, head.Position, head.Hash[:], r.Witness, r.Data, string(dj), at.Format(events.TimeFormat))
	if err != nil {
		return Anchor{}, fmt.Errorf("record anchor: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return Anchor{}, fmt.Errorf("record anchor: %w", err)
	}
	return Anchor{ID: id, Head: head, Receipt: Receipt{Witness: r.Witness, Data: r.Data, Details: details}, AnchoredAt: at}, nil
}

const anchorColumns = `id, position, hash, witness, receipt, details, anchored_at`

func scanAnchor(s interface{ Scan(...any) error }) (Anchor, error) {
	var a Anchor
	var hash []byte
	var details, at string
	if err := s.Scan(&a.ID, &a.Head.Position, &hash, &a.Receipt.Witness, &a.Receipt.Data, &details, &at); err != nil {
		return a, err
	}
	if len(hash) != len(a.Head.Hash) {
		return a, fmt.Errorf("anchor %d: hash has %d bytes, want 32", a.ID, len(hash))
	}
	copy(a.Head.Hash[:], hash)
	if err := json.Unmarshal([]byte(details), &a.Receipt.Details); err != nil {
		return a, fmt.Errorf("anchor %d: details: %w", a.ID, err)
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return a, fmt.Errorf("anchor %d: anchored_at: %w", a.ID, err)
	}
	a.AnchoredAt = t
	return a, nil
}

// List returns every anchor, oldest first.
func List(ctx context.Context, q events.Querier) ([]Anchor, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+anchorColumns+` FROM anchors ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list anchors: %w", err)
	}
	defer rows.Close()
	var out []Anchor
	for rows.Next() {
		a, err := scanAnchor(rows)
		if err != nil {
			return nil, fmt.Errorf("list anchors: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list anchors: %w", err)
	}
	return out, nil
}

// Get returns the anchor with id, or a not_found error.
func Get(ctx context.Context, q events.Querier, id int64) (Anchor, error) {
	a, err := scanAnchor(q.QueryRowContext(ctx, `SELECT `+anchorColumns+` FROM anchors WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Anchor{}, errs.E(errs.NotFound, "there is no anchor %d", id)
	}
	if err != nil {
		return Anchor{}, fmt.Errorf("anchor %d: %w", id, err)
	}
	return a, nil
}

// Last returns the newest anchor made with witness, or a not_found error.
func Last(ctx context.Context, q events.Querier, witness string) (Anchor, error) {
	a, err := scanAnchor(q.QueryRowContext(ctx, `SELECT `+anchorColumns+` FROM anchors WHERE witness = ? ORDER BY id DESC LIMIT 1`, witness))
	if errors.Is(err, sql.ErrNoRows) {
		return Anchor{}, errs.E(errs.NotFound, "nothing anchored with %s yet", witness)
	}
	if err != nil {
		return Anchor{}, fmt.Errorf("last %s anchor: %w", witness, err)
	}
	return a, nil
}

// LastOfKind returns the newest anchor made by any witness of kind
// ("tlog" finds "tlog:NAME"), or a not_found error.
func LastOfKind(ctx context.Context, q events.Querier, kind string) (Anchor, error) {
	a, err := scanAnchor(q.QueryRowContext(ctx, `SELECT `+anchorColumns+` FROM anchors WHERE witness = ? OR substr(witness, 1, ?) = ? ORDER BY id DESC LIMIT 1`, kind, len(kind)+1, kind+":"))
	if errors.Is(err, sql.ErrNoRows) {
		return Anchor{}, errs.E(errs.NotFound, "nothing anchored with %s yet", kind)
	}
	if err != nil {
		return Anchor{}, fmt.Errorf("last %s anchor: %w", kind, err)
	}
	return a, nil
}

// refused builds the error of a witness that answered and said no.
func refused(format string, args ...any) error {
	return errs.E(errs.Invalid, format, args...)
}

// Refused reports whether err says a witness answered and refused, as
// opposed to not being reachable.
func Refused(err error) bool { return errs.Code(err) == errs.Invalid }

func hexHash(h [32]byte) string { return hex.EncodeToString(h[:]) }
