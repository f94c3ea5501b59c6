package events_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/migrations"
)

// A tiny domain for the log's own tests: counters that can be bumped.
type bumped struct {
	By int `json:"by"`
}

type fixture struct {
	db     *events.DB
	w      *events.Writer
	reg    *events.Registry
	bumped events.Type[bumped]
}

func openTestDB(tb testing.TB) *events.DB {
	tb.Helper()
	db, err := events.Open(context.Background(), filepath.Join(tb.TempDir(), "braid.db"), migrations.FS)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func newRegistry(tb testing.TB, db *events.DB) (*events.Registry, events.Type[bumped]) {
	tb.Helper()
	ctx := context.Background()
	if _, err := db.Write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS counters (id TEXT PRIMARY KEY, total INTEGER NOT NULL)`); err != nil {
		tb.Fatal(err)
	}
	reg := events.NewRegistry()
	t := events.Define[bumped](reg, "counter_bumped", 1)
	p := reg.NewProjection("counters", "counters")
	events.On(reg, p, t, func(ctx context.Context, q events.Querier, e *events.Event, d bumped) error {
		_, err := q.ExecContext(ctx, `INSERT INTO counters (id, total) VALUES (?, ?)
			ON CONFLICT (id) DO UPDATE SET total = total + excluded.total`, e.AggregateID, d.By)
		return err
	})
	return reg, t
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	db := openTestDB(tb)
	reg, t := newRegistry(tb, db)
	w, err := events.NewWriter(context.Background(), db, reg, events.WriterOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { w.Close() })
	return &fixture{db: db, w: w, reg: reg, bumped: t}
}

func (f *fixture) bump(ctx context.Context, id string, by int, expect int64, cmdID string) (events.Result, error) {
	return f.w.Do(ctx, events.Command{ID: cmdID, Actor: "tester", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
		if by <= 0 {
			return nil, errs.Field("by", "must be positive, got %d", by)
		}
		return []events.Change{{AggregateType: "counter", AggregateID: id, Expect: expect,
			Events: []events.Pending{f.bumped.New(bumped{By: by})}}}, nil
	}})
}

func mustVerify(tb testing.TB, db *events.DB, wantEvents int64) events.Report {
	tb.Helper()
	r, err := events.Verify(context.Background(), db.Read)
	if err != nil {
		tb.Fatal(err)
	}
	if !r.Intact {
		tb.Fatalf("braid broken: %+v", r.Failure)
	}
	if r.Events != wantEvents {
		tb.Fatalf("verified %d events, want %d", r.Events, wantEvents)
	}
	return r
}

func TestAppendBuildsBraid(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var last events.Event
	for i := 1; i <= 5; i++ {
		res, err := f.bump(ctx, "a", i, events.Any, "")
		if err != nil {
			t.Fatal(err)
		}
		e := res.Events[0]
		if e.Position != int64(i) || e.Version != int64(i) {
			t.Fatalf("position, version = %d, %d; want %d, %d", e.Position, e.Version, i, i)
		}
		if e.ParentHash != last.Hash {
			t.Fatalf("parent of %d is %x, want hash of %d %x", e.Position, e.ParentHash, last.Position, last.Hash)
		}
		if e.ComputeHash() != e.Hash {
			t.Fatalf("hash of %d does not recompute", e.Position)
		}
		last = e
	}
	r := mustVerify(t, f.db, 5)
	if r.Head.Hash != last.Hash || f.w.Head() != r.Head {
		t.Fatalf("head %x, writer head %x; want %x", r.Head.Hash, f.w.Head().Hash, last.Hash)
	}
	var total int
	f.db.Read.QueryRow(`SELECT total FROM counters WHERE id='a'`).Scan(&total)
	if total != 15 {
		t.Fatalf("projection total = %d, want 15", total)
	}
}

func TestStaleExpectedVersionConflicts(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.bump(ctx, "a", 1, 0, ""); err != nil {
		t.Fatal(err)
	}
	_, err := f.bump(ctx, "a", 1, 0, "")
	if errs.Code(err) != errs.Conflict {
		t.Fatalf("stale expected version: got %v, want a conflict", err)
	}
	if _, err := f.bump(ctx, "a", 1, 1, ""); err != nil {
		t.Fatalf("current expected version: %v", err)
	}
	mustVerify(t, f.db, 2)
}

func TestRetriedCommandAppendsNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first, err := f.bump(ctx, "a", 3, events.Any, "cmd-1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.bump(ctx, "a", 3, events.Any, "cmd-1")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Repeated || len(again.Events) != 1 || again.Events[0].Hash != first.Events[0].Hash {
		t.Fatalf("retry: got %+v, want the first events again", again)
	}
	mustVerify(t, f.db, 1)
}

func TestRejectedCommandRollsBackAloneInBatch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Many commands at once, every third rejected: those around it in the
	// same group commit must land, with no gaps in positions or versions.
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, rejected := 0, 0
	for i := 0; i < 300; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			by := 1
			if i%3 == 0 {
				by = 0
			}
			_, err := f.bump(ctx, "shared", by, events.Any, "")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errs.Code(err) == errs.Invalid:
				rejected++
			default:
				t.Errorf("bump: %v", err)
			}
		}(i)
	}
	wg.Wait()
	if ok != 200 || rejected != 100 {
		t.Fatalf("ok=%d rejected=%d, want 200 and 100", ok, rejected)
	}
	mustVerify(t, f.db, 200)
	var total int
	f.db.Read.QueryRow(`SELECT total FROM counters WHERE id='shared'`).Scan(&total)
	if total != 200 {
		t.Fatalf("projection total = %d, want 200", total)
	}
}

func TestConcurrentAppendersLoseNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const goroutines, each = 64, 40
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := "shared"
				if i%2 == 1 {
					id = fmt.Sprintf("own-%d", g)
				}
				if _, err := f.bump(ctx, id, 1, events.Any, fmt.Sprintf("g%d-i%d", g, i)); err != nil {
					t.Errorf("bump: %v", err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	mustVerify(t, f.db, goroutines*each)
	var n, distinct int
	f.db.Read.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT command_id) FROM events`).Scan(&n, &distinct)
	if n != goroutines*each || distinct != n {
		t.Fatalf("events=%d distinct commands=%d, want %d each", n, distinct, goroutines*each)
	}
	var shared int
	f.db.Read.QueryRow(`SELECT total FROM counters WHERE id='shared'`).Scan(&shared)
	if shared != goroutines*each/2 {
		t.Fatalf("shared counter = %d, want %d", shared, goroutines*each/2)
	}
}

func TestLogRefusesUpdateAndDelete(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.bump(ctx, "a", 1, events.Any, ""); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE events SET actor = 'mallory'`, `DELETE FROM events`} {
		err := f.w.Exclusive(ctx, func(ctx context.Context, tx events.Querier) error {
			_, err := tx.ExecContext(ctx, q)
			return err
		})
		if err == nil {
			t.Fatalf("%s: succeeded, want refused", q)
		}
	}
	mustVerify(t, f.db, 1)
}

func TestReopenKeepsHeadAndCatchesUpNewProjection(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "braid.db")
	db, err := events.Open(ctx, path, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	reg, typ := newRegistry(t, db)
	w, err := events.NewWriter(ctx, db, reg, events.WriterOptions{Clock: func() time.Time { return time.Unix(0, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := w.Do(ctx, events.Command{Actor: "t", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			return []events.Change{{AggregateType: "counter", AggregateID: "x", Expect: events.Any, Events: []events.Pending{typ.New(bumped{By: 2})}}}, nil
		}}); err != nil {
			t.Fatal(err)
		}
	}
	head := w.Head()
	w.Close()
	db.Close()

	// A later release adds a projection: it is built from the log at start-up.
	db, err = events.Open(ctx, path, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg, typ = newRegistry(t, db)
	db.Write.Exec(`CREATE TABLE sums (n INTEGER)`)
	db.Write.Exec(`INSERT INTO sums VALUES (0)`)
	p := reg.NewProjection("sums", "sums")
	events.On(reg, p, typ, func(ctx context.Context, q events.Querier, e *events.Event, d bumped) error {
		_, err := q.ExecContext(ctx, `UPDATE sums SET n = n + ?`, d.By)
		return err
	})
	w, err = events.NewWriter(ctx, db, reg, events.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Head() != head {
		t.Fatalf("head after reopen %+v, want %+v", w.Head(), head)
	}
	var n, counter int
	db.Read.QueryRow(`SELECT n FROM sums`).Scan(&n)
	db.Read.QueryRow(`SELECT total FROM counters WHERE id='x'`).Scan(&counter)
	if n != 6 || counter != 6 {
		t.Fatalf("new projection sum = %d, old counter = %d; want 6 and 6 (old one not applied twice)", n, counter)
	}
}

func TestErrorsAreNotInternalWhenDomain(t *testing.T) {
	f := newFixture(t)
	_, err := f.bump(context.Background(), "a", -1, events.Any, "")
	var e *errs.Error
	if !errors.As(err, &e) || e.Fields["by"] == "" {
		t.Fatalf("got %v, want a field error on by", err)
	}
	mustVerify(t, f.db, 0)
}

// A retried command whose decision would now be a refusal (the first run
// already changed the state it checks) still answers with its first events.
func TestRetriedCommandAnsweredEvenWhenDecisionNowRefuses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	once := events.Command{ID: "close-1", Actor: "tester", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
		v, _, err := tx.Last(ctx, "counter", "a")
		if err != nil {
			return nil, err
		}
		if v > 0 {
			return nil, errs.E(errs.Conflict, "already bumped")
		}
		return []events.Change{{AggregateType: "counter", AggregateID: "a", Expect: 0, Events: []events.Pending{f.bumped.New(bumped{By: 1})}}}, nil
	}}
	first, err := f.w.Do(ctx, once)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.w.Do(ctx, once)
	if err != nil || !again.Repeated || len(again.Events) != 1 || again.Events[0].Hash != first.Events[0].Hash {
		t.Fatalf("retry: got %+v, %v; want the first events, repeated", again, err)
	}
	other := once
	other.ID = "close-2"
	if _, err := f.w.Do(ctx, other); errs.Code(err) != errs.Conflict {
		t.Fatalf("a new command: got %v, want the refusal", err)
	}
	mustVerify(t, f.db, 1)
}

// The writer remembers aggregate versions between commands; a rolled-back
// command and a retried one must leave no wrong version behind.
func TestVersionsStayRightAfterRollbacksAndRetries(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	two := func(id string, fail bool) events.Command {
		return events.Command{ID: id, Actor: "t", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			return []events.Change{
				{AggregateType: "counter", AggregateID: "x", Expect: events.Any, Events: []events.Pending{f.bumped.New(bumped{By: 1})}},
				{AggregateType: "counter", AggregateID: "y", Expect: events.Any, Events: []events.Pending{f.bumped.New(bumped{By: 1})}},
			}, nil
		}, After: func(ctx context.Context, q events.Querier, _ []events.Event) error {
			if fail {
				return errors.New("after failed")
			}
			return nil
		}}
	}
	if _, err := f.w.Do(ctx, two("m1", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.w.Do(ctx, two("m2", true)); err == nil {
		t.Fatal("a failing After: got nil, want the error")
	}
	if r, err := f.w.Do(ctx, two("m1", false)); err != nil || !r.Repeated {
		t.Fatalf("retry: %+v, %v", r, err)
	}
	r, err := f.bump(ctx, "x", 1, 1, "")
	if err != nil {
		t.Fatalf("expecting version 1 of x: %v", err)
	}
	if r.Events[0].Version != 2 {
		t.Fatalf("x's next version: got %d, want 2", r.Events[0].Version)
	}
	mustVerify(t, f.db, 3)
}
