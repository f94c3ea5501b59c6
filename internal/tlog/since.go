package tlog

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"braid/internal/events"
)

// SinceCheck is what VerifySince found.
type SinceCheck struct {
	From       Head        // the checkpoint kept
	Size       int64       // the log's size now
	Root       Hash        // the root at Size, from the checkpoint's subtrees and the new events' recomputed hashes
	Head       events.Head // the log's head
	Rehashed   int64       // events after the checkpoint, each rehashed
	Consistent bool
	// Inconsistent: the log does not extend the checkpoint (its tree at
	// From.Size has LogRoot, or it is shorter); Problem says how.
	Inconsistent bool
	LogRoot      *Hash // the log's root at From.Size, when it has one
	// Position is the first event after the checkpoint that fails, if one does.
	Position int64
	Problem  string
}

// B64 is h in standard base64, as checkpoints write roots.
func B64(h Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

// VerifySince checks, in one read transaction, that the log in db extends
// the checkpoint from: the stored tree at from.Size has from.Root, the
// event at position from.Size is the checkpoint's last leaf (an inclusion
// proof), and every event after it links to the one before and hashes to
// its stored braid hash; the root now is computed from the checkpoint's
// subtree roots and those events' leaves, compared with the stored tree's
// and proved consistent with from.Root (RFC 6962). It reads O(log n)
// stored hashes plus the events after from.Size; the events before are
// not rehashed (their hashes are bound to from.Root, their rows are
// checked by a full verify).
func VerifySince(ctx context.Context, db *sql.DB, from Head) (SinceCheck, error) {
	c := SinceCheck{From: from}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return c, fmt.Errorf("verify since: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(position), 0) FROM events`).Scan(&c.Size); err != nil {
		return c, fmt.Errorf("verify since: %w", err)
	}
	r := Reader{Ctx: ctx, Q: tx}
	inconsistent := func(format string, args ...any) (SinceCheck, error) {
		c.Inconsistent, c.Problem = true, fmt.Sprintf(format, args...)
		return c, nil
	}
	if c.Size < from.Size {
		return inconsistent("the log has %d events, fewer than the checkpoint's %d: it was cut back", c.Size, from.Size)
	}
	var f frontier
	if from.Size == 0 {
		if from.Root != EmptyRoot {
			return inconsistent("the checkpoint at size 0 has root %s, not the empty tree's %s", B64(from.Root), B64(EmptyRoot))
		}
	} else {
		if err := stored(ctx, tx, from.Size); errors.Is(err, ErrNotFound) {
			c.Problem = fmt.Sprintf("no stored tree of %d leaves in this database (start `web serve` once, or run `web replay`)", from.Size)
			return c, nil
		} else if err != nil {
			return c, fmt.Errorf("verify since: %w", err)
		}
		logRoot, err := xtlog.TreeHash(from.Size, r)
		if err != nil {
			return c, fmt.Errorf("verify since: %w", err)
		}
		c.LogRoot = &logRoot
		if logRoot != from.Root {
			return inconsistent("the log's tree at size %d has root %s, the checkpoint %s", from.Size, B64(logRoot), B64(from.Root))
		}
		// The last leaf: the event at from.Size, rehashed, proved in the
		// checkpoint's tree; the next event must link to its hash.
		last, err := events.Get(ctx, tx, from.Size)
		if err != nil {
			return c, fmt.Errorf("verify since: %w", err)
		}
		if !last.HashOK() {
			return inconsistent("the event at position %d (the checkpoint's last) does not hash to its stored hash", from.Size)
		}
		proof, err := xtlog.ProveRecord(from.Size, from.Size-1, r)
		if err != nil {
			return c, fmt.Errorf("verify since: %w", err)
		}
		if xtlog.CheckRecord(proof, from.Size, from.Root, from.Size-1, LeafHash(last.Hash)) != nil {
			return inconsistent("the event at position %d is not the last leaf of the checkpoint's tree", from.Size)
		}
		c.Head = events.Head{Position: last.Position, Hash: last.Hash}
		if f, err = loadFrontier(ctx, tx, from.Size); err != nil {
			return c, fmt.Errorf("verify since: %w", err)
		}
	}
	// The new events: each linked and rehashed, its leaf added.
	prev := c.Head
	versions := map[[2]string]int64{}
	err = events.Scan(ctx, tx, from.Size, func(e *events.Event) error {
		fail := func(format string, args ...any) error {
			c.Position, c.Problem = e.Position, fmt.Sprintf(format, args...)
			return errStop
		}
		switch {
		case e.Position != prev.Position+1:
			return fail("position gap: expected position %d, found %d", prev.Position+1, e.Position)
		case e.ParentHash != prev.Hash:
			return fail("parent hash mismatch: expected %s (hash of position %d), found %s", events.Hex(prev.Hash), prev.Position, events.Hex(e.ParentHash))
		case !e.HashOK():
			return fail("hash mismatch: the event at position %d does not hash to its stored hash", e.Position)
		}
		k := [2]string{e.AggregateType, e.AggregateID}
		v, ok := versions[k]
		if !ok {
			// The aggregate's version before this event, from the index.
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM events WHERE aggregate_type = ? AND aggregate_id = ? AND position < ?`,
				e.AggregateType, e.AggregateID, e.Position).Scan(&v); err != nil {
				return err
			}
			k = [2]string{string([]byte(e.AggregateType)), string([]byte(e.AggregateID))}
		}
		if e.Version != v+1 {
			return fail("version gap in %s %s: expected version %d, found %d", e.AggregateType, e.AggregateID, v+1, e.Version)
		}
		versions[k] = e.Version
		f.push(LeafHash(e.Hash), nil)
		prev = events.Head{Position: e.Position, Hash: e.Hash}
		c.Rehashed++
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return c, fmt.Errorf("verify since: %w", err)
	}
	c.Head = prev
	if c.Problem != "" {
		return c, nil
	}
	if c.Head.Position != c.Size {
		c.Problem = fmt.Sprintf("the log ends at position %d, want %d", c.Head.Position, c.Size)
		return c, nil
	}
	c.Root = f.root()
	if c.Size == from.Size {
		c.Consistent = true
		return c, nil
	}
	if err := stored(ctx, tx, c.Size); errors.Is(err, ErrNotFound) {
		c.Problem = fmt.Sprintf("the stored tree stops before the log's %d events", c.Size)
		return c, nil
	} else if err != nil {
		return c, fmt.Errorf("verify since: %w", err)
	}
	storedRoot, err := xtlog.TreeHash(c.Size, r)
	if err != nil {
		return c, fmt.Errorf("verify since: %w", err)
	}
	if storedRoot != c.Root {
		c.Position = from.Size + 1
		c.Problem = fmt.Sprintf("the stored tree's root at size %d (%s) differs from the one recomputed from the events after the checkpoint (%s)", c.Size, B64(storedRoot), B64(c.Root))
		return c, nil
	}
	if from.Size > 0 {
		proof, err := xtlog.ProveTree(c.Size, from.Size, r)
		if err != nil {
			return c, fmt.Errorf("verify since: %w", err)
		}
		if xtlog.CheckTree(proof, c.Size, c.Root, from.Size, from.Root) != nil {
			return inconsistent("no consistency proof from the checkpoint at size %d to the tree of %d", from.Size, c.Size)
		}
	}
	c.Consistent = true
	return c, nil
}

var errStop = errors.New("stop")

// ExtendStored appends to tlog_hashes the stored hashes of the events
// after the stored tree, up to position to, in the caller's transaction on
// q (a mirror's pull, after appending events). It trusts the stored hashes
// it finds, as Open does.
func ExtendStored(ctx context.Context, q events.Querier, to int64) error {
	var stored int64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(id) + 1, 0) FROM tlog_hashes`).Scan(&stored); err != nil {
		return fmt.Errorf("tlog: extend: %w", err)
	}
	n := leavesIn(stored, to)
	if stored > xtlog.StoredHashIndex(0, n) {
		if _, err := q.ExecContext(ctx, `DELETE FROM tlog_hashes WHERE id >= ?`, xtlog.StoredHashIndex(0, n)); err != nil {
			return fmt.Errorf("tlog: extend: %w", err)
		}
	}
	f, err := loadFrontier(ctx, q, n)
	if err != nil {
		return fmt.Errorf("tlog: extend: %w", err)
	}
	t := New()
	t.front, t.size, t.flushed = f, n, n
	if err := t.extend(ctx, q, q, to); err != nil {
		return fmt.Errorf("tlog: extend: %w", err)
	}
	return nil
}

// StoredRoot is the root of the stored tree of size leaves in q.
func StoredRoot(ctx context.Context, q events.Querier, size int64) (Hash, error) {
	if size == 0 {
		return EmptyRoot, nil
	}
	if err := stored(ctx, q, size); err != nil {
		return Hash{}, err
	}
	return xtlog.TreeHash(size, Reader{Ctx: ctx, Q: q})
}

// OpenCheckpoint checks a signed checkpoint (a note, as GET /checkpoint
// serves it) with the verifier key vkey and returns its origin and head.
// A checkpoint whose origin is not the key's name is refused: the origin
// line and the key's name are one.
func OpenCheckpoint(msg []byte, vkey string) (origin string, h Head, err error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return "", h, fmt.Errorf("verifier key %q: %v", vkey, err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return "", h, fmt.Errorf("the checkpoint is not signed by %s: %v", v.Name(), err)
	}
	origin, h, err = ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return "", h, err
	}
	if origin != v.Name() {
		return "", h, fmt.Errorf("the checkpoint's origin %q is not its key's name %q", origin, v.Name())
	}
	return origin, h, nil
}
