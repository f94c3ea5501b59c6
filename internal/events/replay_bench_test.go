package events_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"braid/internal/events"
)

// seedBulk appends about n events through the writer with the notes
// registry, fast: each command creates 50 notes with 4 more events each
// (edits and tags), 250 events a command, from 4 goroutines so that commits
// are grouped.
func seedBulk(tb testing.TB, a *notesApp, n int) {
	tb.Helper()
	ctx := context.Background()
	const perCmd = 250
	cmds := (n + perCmd - 1) / perCmd
	var wg sync.WaitGroup
	next := make(chan int)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			m := newNotesModel(int64(g))
			for c := range next {
				var changes []events.Change
				for i := 0; i < perCmd/5; i++ {
					id := strconv.Itoa(c*perCmd + i + 1)
					changes = append(changes, events.Change{AggregateType: "note", AggregateID: id, Expect: 0, Events: []events.Pending{
						a.d.created.New(noteCreated{Title: m.text(3), Body: m.text(15)}),
						a.d.edited.New(noteEdited{Body: m.text(20)}),
						a.d.tagged.New(noteTagged{Tag: m.text(1)}),
						a.d.tagged.New(noteTagged{Tag: m.text(1)}),
						a.d.edited.New(noteEdited{Body: m.text(12)}),
					}})
				}
				if _, err := a.w.Do(ctx, events.Command{Actor: "seed", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
					return changes, nil
				}}); err != nil {
					tb.Error(err)
					return
				}
			}
		}(g)
	}
	for c := 0; c < cmds; c++ {
		next <- c
	}
	close(next)
	wg.Wait()
}

// benchLog opens (seeding it the first time) a log of BRAID_BENCH_EVENTS
// events (default 1,000,000) at BRAID_BENCH_DB (default: a temporary file).
func benchLog(b *testing.B) *notesApp {
	n := 1_000_000
	if s := os.Getenv("BRAID_BENCH_EVENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	path := os.Getenv("BRAID_BENCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "bench.db")
	}
	a := openNotesApp(b, path)
	if a.w.Head().Position < int64(n) {
		b.Logf("seeding %d events into %s", n, path)
		seedBulk(b, a, n-int(a.w.Head().Position))
	}
	return a
}

// BenchmarkAuditLog measures verify, replay and export of a whole log; run
// with -benchtime 1x (each op is the whole log).
func BenchmarkAuditLog(b *testing.B) {
	a := benchLog(b)
	ctx := context.Background()
	n := a.w.Head().Position
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			r, err := events.Verify(ctx, a.db.Read)
			if err != nil || !r.Intact || r.Events != n {
				b.Fatalf("verify: %+v, %v", r, err)
			}
		}
		b.ReportMetric(float64(n*int64(b.N))/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("replay", func(b *testing.B) {
		for b.Loop() {
			r, err := events.Replay(ctx, a.db, a.d.reg, a.w, events.ReplayOptions{})
			if err != nil || r.Events != n {
				b.Fatalf("replay: %+v, %v", r, err)
			}
		}
		b.ReportMetric(float64(n*int64(b.N))/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("deep", func(b *testing.B) { // web verify --deep
		for b.Loop() {
			r, err := events.DeepVerify(ctx, a.db.Read, a.d.reg, events.ReplayOptions{TempDir: b.TempDir()})
			if err != nil || !r.OK || r.Events != n {
				b.Fatalf("deep verify: %+v, %v", r, err)
			}
		}
		b.ReportMetric(float64(n*int64(b.N))/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("export", func(b *testing.B) {
		for b.Loop() {
			if _, err := events.Export(ctx, a.db.Read, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*int64(b.N))/b.Elapsed().Seconds(), "events/s")
	})
}

// TestAuditReplayProcess replays the database at BRAID_AUDIT_REPLAY_DB with
// the notes registry, so that a replay's peak memory can be measured as a
// process of its own (see the report): skipped otherwise.
func TestAuditReplayProcess(t *testing.T) {
	path := os.Getenv("BRAID_AUDIT_REPLAY_DB")
	if path == "" {
		t.Skip("set BRAID_AUDIT_REPLAY_DB to a seeded notes database")
	}
	a := openNotesApp(t, path)
	r, err := events.Replay(context.Background(), a.db, a.d.reg, a.w, events.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replayed %d events in %s (%.0f events/s)", r.Events, r.Took, float64(r.Events)/r.Took.Seconds())
}
