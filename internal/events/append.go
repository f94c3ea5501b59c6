package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Appender is Import for a log that is not empty: it appends events
// received from elsewhere (a mirror's pull) after the head of the log, as
// they are (the same bytes and hashes), checking each against the one
// before, applying it through every projection and, at Finish, setting
// every checkpoint. It works inside the caller's transaction on q (the
// write connection, after BEGIN IMMEDIATE): no Writer may append meanwhile.
type Appender struct {
	ctx     context.Context
	q       Querier
	reg     *Registry
	c       *Checker
	lastCmd string
	idx     int64
	ins     *inserter
	n       int64
}

// NewAppender reads the head of the log in q and returns an appender that
// continues it. The versions of aggregates already in the log are read as
// their events arrive, so opening one costs O(1), not a scan of the log.
func NewAppender(ctx context.Context, q interface {
	Querier
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}, reg *Registry) (*Appender, error) {
	a := &Appender{ctx: ctx, q: q, reg: reg, c: NewChecker()}
	var hash []byte
	err := q.QueryRowContext(ctx, `SELECT position, hash, command_id, command_index FROM events ORDER BY position DESC LIMIT 1`).
		Scan(&a.c.prev.Position, &hash, &a.lastCmd, &a.idx)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("append: read the head: %w", err)
	case len(hash) != 32:
		return nil, fmt.Errorf("append: the head at position %d has a %d-byte hash", a.c.prev.Position, len(hash))
	default:
		copy(a.c.prev.Hash[:], hash)
	}
	a.ins, err = prepareInsert(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("append: %w", err)
	}
	return a, nil
}

// Head is the last event appended (or the log's head before the first).
func (a *Appender) Head() Head { return a.c.prev }

// Add checks e against the log (position, parent hash, recomputed hash,
// aggregate version), inserts it and applies it through every projection.
// A broken link is a *BrokenError.
func (a *Appender) Add(e *Event) error {
	k := aggKey{e.AggregateType, e.AggregateID}
	if _, ok := a.c.versions[k]; !ok && a.c.fail == nil {
		var v int64
		err := a.q.QueryRowContext(a.ctx, `SELECT COALESCE(MAX(version), 0) FROM events WHERE aggregate_type = ? AND aggregate_id = ?`,
			e.AggregateType, e.AggregateID).Scan(&v)
		if err != nil {
			return fmt.Errorf("append: version of %s %s: %w", e.AggregateType, e.AggregateID, err)
		}
		if v > 0 {
			// e's strings may view the caller's buffer: the map keeps copies.
			a.c.versions[aggKey{strings.Clone(e.AggregateType), strings.Clone(e.AggregateID)}] = v
		}
	}
	if f := a.c.Add(e); f != nil {
		return &BrokenError{Failure: *f}
	}
	if e.CommandID == a.lastCmd {
		a.idx++
	} else {
		a.lastCmd, a.idx = e.CommandID, 0
	}
	if err := a.ins.insert(a.ctx, e, a.idx); err != nil {
		return err
	}
	a.n++
	return a.reg.Apply(a.ctx, a.q, e)
}

// Finish sets every projection's checkpoint to the new head and closes the
// appender; the caller commits. It returns how many events were appended.
func (a *Appender) Finish() (int64, error) {
	defer a.ins.close()
	if a.n == 0 {
		return 0, nil
	}
	return a.n, setCheckpoints(a.ctx, a.q, a.reg, a.c.prev.Position)
}

// Close releases the appender without setting checkpoints (the caller rolls
// back).
func (a *Appender) Close() { a.ins.close() }
