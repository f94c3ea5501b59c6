// Package ops keeps a deployment healthy without anyone remembering to:
// it records what the background jobs last did, writes verified exports on
// a schedule, and checks a deployment for `web doctor`.
package ops

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"braid/internal/events"
)

// Kinds of run recorded in ops_runs.
const (
	KindVerify = "verify"
	KindExport = "export"
)

// Run is the latest run of one kind.
type Run struct {
	Kind     string
	At       time.Time
	OK       bool
	OKAt     time.Time // zero when none succeeded
	Position int64
	Detail   string
}

// Record stores run as the latest of its kind, keeping the time of the
// latest success when this one failed.
func Record(ctx context.Context, q events.Querier, r Run) error {
	var okAt any
	if r.OK {
		okAt = r.At.UTC().Format(time.RFC3339Nano)
	}
	_, err := q.ExecContext(ctx, `INSERT INTO ops_runs (kind, at, ok, ok_at, position, detail) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind) DO UPDATE SET at = excluded.at, ok = excluded.ok, ok_at = COALESCE(excluded.ok_at, ops_runs.ok_at),
		position = excluded.position, detail = excluded.detail`,
		r.Kind, r.At.UTC().Format(time.RFC3339Nano), r.OK, okAt, r.Position, r.Detail)
	if err != nil {
		return fmt.Errorf("record %s run: %w", r.Kind, err)
	}
	return nil
}

// ErrNoRun is returned by Last when no run of the kind was recorded.
var ErrNoRun = errors.New("no run recorded")

// Last returns the latest run of kind, or ErrNoRun (also for a database
// from before ops_runs, which a read-only opening does not migrate).
func Last(ctx context.Context, q events.Querier, kind string) (Run, error) {
	r := Run{Kind: kind}
	var tables int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'ops_runs'`).Scan(&tables); err != nil {
		return r, fmt.Errorf("last %s run: %w", kind, err)
	}
	if tables == 0 {
		return r, ErrNoRun
	}
	var at string
	var okAt sql.NullString
	err := q.QueryRowContext(ctx, `SELECT at, ok, ok_at, position, detail FROM ops_runs WHERE kind = ?`, kind).
		Scan(&at, &r.OK, &okAt, &r.Position, &r.Detail)
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNoRun
	}
	if err != nil {
		return r, fmt.Errorf("last %s run: %w", kind, err)
	}
	if r.At, err = time.Parse(time.RFC3339Nano, at); err != nil {
		return r, fmt.Errorf("last %s run: time %q: %w", kind, at, err)
	}
	if okAt.Valid {
		if r.OKAt, err = time.Parse(time.RFC3339Nano, okAt.String); err != nil {
			return r, fmt.Errorf("last %s run: time %q: %w", kind, okAt.String, err)
		}
	}
	return r, nil
}
