package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"braid/internal/events"
)

// deepVerify rebuilds every projection from the log into scratch files
// and compares it with the live tables (events.DeepVerify), then keeps the
// result in deep_checks for /verify when the database has that table (a
// database `web serve` has migrated). The live tables are only read; the
// record is one row written through its own connection.
func deepVerify(ctx context.Context, db *events.DB, tmp string) (events.DeepReport, bool, error) {
	reg, _ := registry()
	at := time.Now()
	r, err := events.DeepVerify(ctx, db.Read, reg, events.ReplayOptions{TempDir: tmp})
	if err != nil {
		return r, false, err
	}
	var n int
	if err := db.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'deep_checks'`).Scan(&n); err != nil || n == 0 {
		return r, false, err
	}
	w, err := sql.Open("sqlite", events.DSN(db.Path))
	if err != nil {
		return r, false, err
	}
	defer w.Close()
	if err := events.RecordDeepCheck(ctx, w, r, at); err != nil {
		return r, false, err
	}
	return r, true, nil
}

// runDeepVerify runs a deep verification every `every` until ctx ends,
// recording each through the writer (serve --deep-verify-every).
func runDeepVerify(ctx context.Context, a *app, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		at := time.Now()
		r, err := events.DeepVerify(ctx, a.db.Read, a.reg, events.ReplayOptions{})
		if err != nil {
			if ctx.Err() == nil {
				log.Error("deep verify", slog.Any("err", err))
			}
			continue
		}
		if !r.OK {
			log.Error("deep verify: a projection differs from the log", slog.String("problem", r.Problem()))
		}
		err = a.writer.Exclusive(ctx, func(ctx context.Context, q events.Querier) error {
			return events.RecordDeepCheck(ctx, q, r, at)
		})
		if err != nil && ctx.Err() == nil {
			log.Error("deep verify: record", slog.Any("err", err))
		}
	}
}

// deepLine is what `web verify --deep` prints.
func deepLine(r events.DeepReport) string {
	if r.OK {
		return fmt.Sprintf("projections: %d tables, %d rows equal to the ones rebuilt from %d events (deep check, %s)", len(r.Tables), r.Rows, r.Events, r.Took.Round(time.Millisecond))
	}
	return "projections differ from the log: " + r.Problem()
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }
