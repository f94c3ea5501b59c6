package events_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"braid/internal/events"
	"braid/internal/metrics"
	"braid/internal/tlog"
	"braid/migrations"
)

const appenders = 64

// split runs fn(g, i) for i in [0, n) on appenders goroutines and returns
// the wall time taken.
func split(b *testing.B, n int, fn func(g, i int) error) time.Duration {
	b.Helper()
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	start := time.Now()
	for g := range appenders {
		share := n / appenders
		if g < n%appenders {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range share {
				if err := fn(g, i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if first != nil {
		b.Fatal(first)
	}
	return took
}

func reportRate(b *testing.B, n int, took time.Duration) {
	b.ReportMetric(float64(n)/took.Seconds(), "events/s")
}

// BenchmarkAppend compares the group-commit writer with the seed design (a
// global mutex and one transaction per event). Both append one event per
// command and update one projection row, on a real file with
// synchronous=FULL, from 64 goroutines.
func BenchmarkAppend(b *testing.B) {
	b.Run("groupcommit", func(b *testing.B) {
		f := newFixture(b)
		ctx := context.Background()
		b.ResetTimer()
		took := split(b, b.N, func(g, i int) error {
			_, err := f.bump(ctx, fmt.Sprintf("c%d", g%8), 1, events.Any, "")
			return err
		})
		b.StopTimer()
		reportRate(b, b.N, took)
		mustVerify(b, f.db, int64(b.N))
	})

	// The same with the transparency tree kept by the writer (its stored
	// hashes written in the same transaction): the cost of the tree.
	b.Run("groupcommit-tlog", func(b *testing.B) {
		tree := tlog.New()
		f := newFixtureWith(b, events.WriterOptions{Hooks: []events.Hook{tree}})
		ctx := context.Background()
		b.ResetTimer()
		took := split(b, b.N, func(g, i int) error {
			_, err := f.bump(ctx, fmt.Sprintf("c%d", g%8), 1, events.Any, "")
			return err
		})
		b.StopTimer()
		reportRate(b, b.N, took)
		mustVerify(b, f.db, int64(b.N))
		if h := tree.Head(); h.Size != int64(b.N) {
			b.Fatalf("tree has %d leaves, want %d", h.Size, b.N)
		}
	})

	// The same with every command and batch counted for Prometheus
	// (serve always counts): the cost of the metrics.
	b.Run("groupcommit-metrics", func(b *testing.B) {
		f := newFixtureWith(b, events.WriterOptions{Observer: metrics.New()})
		ctx := context.Background()
		b.ResetTimer()
		took := split(b, b.N, func(g, i int) error {
			_, err := f.bump(ctx, fmt.Sprintf("c%d", g%8), 1, events.Any, "")
			return err
		})
		b.StopTimer()
		reportRate(b, b.N, took)
		mustVerify(b, f.db, int64(b.N))
	})

	b.Run("naive", func(b *testing.B) {
		ctx := context.Background()
		path := filepath.Join(b.TempDir(), "braid.db")
		db, err := events.Open(ctx, path, migrations.FS) // applies the migrations
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		_, bumpedType := newRegistry(b, db)
		sdb, err := sql.Open("sqlite", events.DSN(path))
		if err != nil {
			b.Fatal(err)
		}
		defer sdb.Close()
		var mu sync.Mutex
		at := time.Now().UTC().Format(events.TimeFormat)
		b.ResetTimer()
		took := split(b, b.N, func(g, i int) error {
			mu.Lock()
			defer mu.Unlock()
			return naiveAppend(ctx, sdb, "counter", fmt.Sprintf("c%d", g%8), bumpedType.New(bumped{By: 1}), at)
		})
		b.StopTimer()
		reportRate(b, b.N, took)
		mustVerify(b, db, int64(b.N))
	})
}

// naiveAppend is the seed app's write path: a transaction per event that
// reads the head back from the log.
func naiveAppend(ctx context.Context, db *sql.DB, aggType, aggID string, p events.Pending, at string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	e := events.Event{AggregateType: aggType, AggregateID: aggID, Type: p.Type, Schema: p.Schema,
		Actor: "bench", OccurredAt: at, CommandID: events.NewID(), Data: p.Data}
	var ph []byte
	err = tx.QueryRowContext(ctx, `SELECT hash FROM events ORDER BY position DESC LIMIT 1`).Scan(&ph)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	copy(e.ParentHash[:], ph)
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(position), 0) + 1 FROM events`).Scan(&e.Position); err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM events WHERE aggregate_type = ? AND aggregate_id = ?`, aggType, aggID).Scan(&e.Version); err != nil {
		return err
	}
	e.Hash = e.ComputeHash()
	if _, err := tx.ExecContext(ctx, `INSERT INTO events (position, aggregate_type, aggregate_id, version, event_type, schema, actor, occurred_at, command_id, data, parent_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		e.Position, e.AggregateType, e.AggregateID, e.Version, e.Type, e.Schema, e.Actor, e.OccurredAt, e.CommandID, string(e.Data), e.ParentHash[:], e.Hash[:]); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO counters (id, total) VALUES (?, 1)
		ON CONFLICT (id) DO UPDATE SET total = total + excluded.total`, aggID); err != nil {
		return err
	}
	return tx.Commit()
}

// BenchmarkVerify checks a log of 100,000 events.
func BenchmarkVerify(b *testing.B) {
	const total, perCommand = 100_000, 1_000
	f := newFixture(b)
	ctx := context.Background()
	// Seed in commands of a thousand events, many at once, so the writer
	// packs them into a few group commits.
	var wg sync.WaitGroup
	errc := make(chan error, total/perCommand)
	for c := range total / perCommand {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.w.Do(ctx, events.Command{Actor: "seed", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
				ch := make([]events.Change, 10)
				for k := range ch {
					ch[k] = events.Change{AggregateType: "counter", AggregateID: fmt.Sprintf("c%d-%d", c, k), Expect: 0}
					for i := range perCommand / len(ch) {
						ch[k].Events = append(ch[k].Events, f.bumped.New(bumped{By: i + 1}))
					}
				}
				return ch, nil
			}})
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			b.Fatal(err)
		}
	}
	head := f.w.Head()
	start := time.Now()
	n := 0
	for b.Loop() {
		r, err := events.Verify(ctx, f.db.Read)
		if err != nil {
			b.Fatal(err)
		}
		if !r.Intact || r.Events != total || r.Head != head {
			b.Fatalf("verify: got intact=%v events=%d head %d, want intact %d events head %d (failure %+v)", r.Intact, r.Events, r.Head.Position, total, head.Position, r.Failure)
		}
		n++
	}
	reportRate(b, n*total, time.Since(start))
}
