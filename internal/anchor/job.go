package anchor

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"time"

	"braid/internal/errs"
	"braid/internal/events"
)

// Job anchors the head with one witness on a schedule.
//
// It never blocks the writer: it reads the head through Head (the writer's
// committed head, behind a read lock, no database access), talks to the
// witness outside any transaction, and records the receipt with one plain
// INSERT through DB. DB should be events.DB.Aux, the connection meant for
// tables that live outside the log: the insert waits out the writer's short
// batches on the busy timeout rather than queueing as a command, so a slow
// or dead witness and anchoring as a whole stay off the writer's path and
// out of its lifecycle (Writer.Exclusive would run the insert inside the
// writer's batch transaction, for no gain: the anchors table is not part of
// the braid).
type Job struct {
	Witness Witness
	Head    func() events.Head
	DB      *sql.DB
	// Interval is the time between anchors (default 1 h). After a failure
	// the job retries after MinBackoff (default 5 s), doubling each time up
	// to MaxBackoff (default Interval).
	Interval, MinBackoff, MaxBackoff time.Duration
	Clock                            func() time.Time // default time.Now
	Log                              *slog.Logger     // default discards
}

// Outcome is what one round of the job did.
type Outcome int

// Outcomes of Once.
const (
	Skipped  Outcome = iota // nothing new to anchor
	Anchored                // a receipt was recorded
)

// Once anchors the head unless the log is empty or its head is the one
// last anchored with this witness.
func (j *Job) Once(ctx context.Context) (Outcome, Anchor, error) {
	head := j.Head()
	if head.Position == 0 {
		return Skipped, Anchor{}, nil
	}
	if m, ok := j.Witness.(Multi); ok {
		return j.onceMulti(ctx, m, head)
	}
	last, err := Last(ctx, j.DB, j.Witness.Name())
	switch {
	case err == nil && last.Head == head:
		return Skipped, last, nil
	case err != nil && errs.Code(err) != errs.NotFound:
		return Skipped, Anchor{}, err
	}
	r, err := j.Witness.Anchor(ctx, head)
	if err != nil {
		return Skipped, Anchor{}, err
	}
	clock := j.Clock
	if clock == nil {
		clock = time.Now
	}
	a, err := Record(ctx, j.DB, head, r, clock())
	if err != nil {
		return Skipped, Anchor{}, err
	}
	return Anchored, a, nil
}

// Backoff returns the wait before retry number n (1, 2, …): MinBackoff
// doubled n-1 times, capped at MaxBackoff.
func (j *Job) Backoff(n int) time.Duration {
	lo, hi := j.durations()
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

func (j *Job) durations() (lo, hi time.Duration) {
	lo, hi = j.MinBackoff, j.MaxBackoff
	if lo <= 0 {
		lo = 5 * time.Second
	}
	if hi <= 0 {
		hi = j.interval()
	}
	return lo, max(lo, hi)
}

func (j *Job) interval() time.Duration {
	if j.Interval <= 0 {
		return time.Hour
	}
	return j.Interval
}

// Run anchors at once, then every Interval, retrying with capped
// exponential backoff while the witness fails, until ctx is done. It logs
// every outcome and returns ctx's error.
func (j *Job) Run(ctx context.Context) error {
	log := j.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(slog.String("witness", j.Witness.Name()))
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		out, a, err := j.Once(ctx)
		next := j.interval()
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			failures++
			next = j.Backoff(failures)
			level := slog.LevelWarn // could not reach the witness: it may come back
			if Refused(err) {
				level = slog.LevelError
			}
			log.Log(ctx, level, "anchor failed", slog.Any("err", err),
				slog.Int("attempt", failures), slog.Duration("retry_in", next))
		case out == Anchored:
			failures = 0
			log.Info("anchored", slog.Int64("id", a.ID), slog.Int64("position", a.Head.Position),
				slog.String("hash", hexHash(a.Head.Hash)), slog.String("receipt", a.Receipt.Summary()))
		case a.ID == 0:
			failures = 0
			log.Info("anchor skipped: nothing to anchor yet (the log is empty, or no checkpoint is signed yet)")
		default:
			failures = 0
			log.Info("anchor skipped: head unchanged since the last anchor", slog.Int64("id", a.ID),
				slog.Int64("position", a.Head.Position))
		}
		timer.Reset(next)
	}
}

// onceMulti anchors with a witness that gives several receipts (a quorum
// of tlog witnesses), skipping when the newest anchor it made is already
// at the head or later.
func (j *Job) onceMulti(ctx context.Context, m Multi, head events.Head) (Outcome, Anchor, error) {
	last, err := LastOfKind(ctx, j.DB, m.Name())
	switch {
	case err == nil && last.Head.Position >= head.Position:
		return Skipped, last, nil
	case err != nil && errs.Code(err) != errs.NotFound:
		return Skipped, Anchor{}, err
	}
	rs, err := m.AnchorAll(ctx, head)
	if errors.Is(err, ErrNoCheckpoint) {
		return Skipped, last, nil // the signer has not signed the head yet
	}
	if err != nil {
		return Skipped, Anchor{}, err
	}
	clock := j.Clock
	if clock == nil {
		clock = time.Now
	}
	var first Anchor
	for i, r := range rs {
		a, err := Record(ctx, j.DB, head, r, clock())
		if err != nil {
			return Skipped, Anchor{}, err
		}
		if i == 0 {
			first = a
		}
	}
	return Anchored, first, nil
}
