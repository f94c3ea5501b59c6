package events_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
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
	return newFixtureWith(tb, events.WriterOptions{})
}

func newFixtureWith(tb testing.TB, opt events.WriterOptions) *fixture {
	tb.Helper()
	db := openTestDB(tb)
	reg, t := newRegistry(tb, db)
	w, err := events.NewWriter(context.Background(), db, reg, opt)
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
	first, err := f.bump(ctx, "a", 3, events.Any, "0000000000000000000000000000c0d1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.bump(ctx, "a", 3, events.Any, "0000000000000000000000000000c0d1")
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
				if _, err := f.bump(ctx, id, 1, events.Any, fmt.Sprintf("%016x%016x", g, i)); err != nil {
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
	once := events.Command{ID: "00000000000000000000000000c105e1", Actor: "tester", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
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
	other.ID = "00000000000000000000000000c105e2"
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
	if _, err := f.w.Do(ctx, two("000000000000000000000000000000a1", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.w.Do(ctx, two("000000000000000000000000000000a2", true)); err == nil {
		t.Fatal("a failing After: got nil, want the error")
	}
	if r, err := f.w.Do(ctx, two("000000000000000000000000000000a1", false)); err != nil || !r.Repeated {
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

// A command_id is public (it is in the log and every export), so it must
// never act as a capability: a repeat counts only when the same actor sends
// the same command (fingerprint) again; anything else is refused with a 409
// that does not say whose the id was, and appends nothing.
func TestRepeatCountsOnlyForSameActorAndCommand(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	cases := []struct {
		name        string
		firstFP     string // "" stands for an event stored before fingerprints (or imported)
		actor, fp   string
		wantRepeat  bool
		wantConflct bool
	}{
		{"same actor, same command", events.Fingerprint("bump", "a", "1"), "tester", events.Fingerprint("bump", "a", "1"), true, false},
		{"another actor, same command", events.Fingerprint("bump", "a", "1"), "mallory", events.Fingerprint("bump", "a", "1"), false, true},
		{"same actor, another command", events.Fingerprint("bump", "a", "1"), "tester", events.Fingerprint("bump", "a", "2"), false, true},
		{"same actor, no fingerprint now", events.Fingerprint("bump", "a", "1"), "tester", "", false, true},
		{"legacy event, same actor", "", "tester", events.Fingerprint("bump", "a", "1"), true, false},
		{"legacy event, another actor", "", "mallory", events.Fingerprint("bump", "a", "1"), false, true},
	}
	for _, tc := range cases {
		for _, refuse := range []bool{false, true} { // the second run appends again, or its decision refuses
			t.Run(fmt.Sprintf("%s/refusing=%v", tc.name, refuse), func(t *testing.T) {
				f := newFixture(t)
				ctx := context.Background()
				cmd := func(actor, fp string) events.Command {
					return events.Command{ID: id, Actor: actor, Fingerprint: fp, Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
						v, _, err := tx.Last(ctx, "counter", "a")
						if err != nil {
							return nil, err
						}
						if refuse && v > 0 {
							return nil, errs.Field("by", "already bumped")
						}
						return []events.Change{{AggregateType: "counter", AggregateID: "a", Expect: events.Any, Events: []events.Pending{f.bumped.New(bumped{By: 1})}}}, nil
					}}
				}
				first, err := f.w.Do(ctx, cmd("tester", tc.firstFP))
				if err != nil {
					t.Fatal(err)
				}
				var stored string
				f.db.Read.QueryRow(`SELECT command_fingerprint FROM events WHERE position = 1`).Scan(&stored)
				if stored != tc.firstFP {
					t.Fatalf("stored fingerprint %q, want %q", stored, tc.firstFP)
				}
				again, err := f.w.Do(ctx, cmd(tc.actor, tc.fp))
				switch {
				case tc.wantRepeat:
					if err != nil || !again.Repeated || len(again.Events) != 1 || again.Events[0].Hash != first.Events[0].Hash {
						t.Fatalf("got %+v, %v; want the first events, repeated", again, err)
					}
				case tc.wantConflct:
					if errs.Code(err) != errs.Conflict || again.Repeated || len(again.Events) != 0 {
						t.Fatalf("got %+v, %v; want a conflict and no events", again, err)
					}
					if msg := errs.Message(err); strings.Contains(msg, "tester") || !strings.Contains(msg, "already used") {
						t.Fatalf("message %q: want the plain refusal that names nobody", msg)
					}
				}
				mustVerify(t, f.db, 1)
			})
		}
	}
}

func TestFingerprintSeparatesParts(t *testing.T) {
	if events.Fingerprint("k", "ab", "c") == events.Fingerprint("k", "a", "bc") {
		t.Fatal(`Fingerprint("k","ab","c") equals Fingerprint("k","a","bc"): parts are not length-prefixed`)
	}
	if events.Fingerprint("k", "a") == events.Fingerprint("ka") {
		t.Fatal("the kind runs into the first part")
	}
	if got := events.Fingerprint("k", "a"); len(got) != 64 || got != events.Fingerprint("k", "a") {
		t.Fatalf("Fingerprint = %q, want 64 stable hex digits", got)
	}
}

// command_id has one format, the one NewID makes; the writer refuses any
// other before the command runs.
func TestCommandIDHasOneFormat(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, id := range []string{"cmd-1", "\xff", "\x00", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0", "0123456789abcdef0123456789abcdeg"} {
		_, err := f.bump(ctx, "a", 1, events.Any, id)
		if errs.Code(err) != errs.Invalid || errs.Fields(err)["command_id"] == "" {
			t.Errorf("command_id %q: got %v, want invalid with a message on command_id", id, err)
		}
	}
	if !events.ValidID(events.NewID()) {
		t.Fatal("NewID makes an id ValidID refuses")
	}
	if _, err := f.bump(ctx, "a", 1, events.Any, events.NewID()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.bump(ctx, "a", 1, events.Any, ""); err != nil {
		t.Fatalf("an empty command_id gets a fresh one: %v", err)
	}
	mustVerify(t, f.db, 2)
}

// The writer is the last line of defence: nothing that is not text reaches
// the log's columns, whatever a command decided.
func TestWriterRefusesEventsThatAreNotText(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ok := f.bumped.New(bumped{By: 1})
	cases := []struct {
		name    string
		actor   string
		aggType string
		aggID   string
		p       events.Pending
	}{
		{"actor not UTF-8", "\xff", "counter", "a", ok},
		{"actor with NUL", "a\x00b", "counter", "a", ok},
		{"aggregate type with a control character", "t", "count\x01er", "a", ok},
		{"aggregate id not UTF-8", "t", "counter", "\xc3", ok},
		{"aggregate id with DEL", "t", "counter", "a\x7f", ok},
		{"aggregate id with C1", "t", "counter", "a\u0085", ok},
		{"data not UTF-8", "t", "counter", "a", events.Pending{Type: ok.Type, Schema: 1, Data: []byte("{\"by\":1,\"x\":\"\xff\"}")}},
		{"data over MaxData", "t", "counter", "a", events.Pending{Type: ok.Type, Schema: 1, Data: []byte(`{"by":1,"x":"` + strings.Repeat("x", events.MaxData) + `"}`)}},
	}
	for _, tc := range cases {
		_, err := f.w.Do(ctx, events.Command{Actor: tc.actor, Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			return []events.Change{{AggregateType: tc.aggType, AggregateID: tc.aggID, Expect: events.Any, Events: []events.Pending{tc.p}}}, nil
		}})
		if errs.Code(err) != errs.Invalid {
			t.Errorf("%s: got %v, want invalid", tc.name, err)
		}
	}
	if _, err := f.w.Do(ctx, events.Command{Actor: "t", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
		return []events.Change{{AggregateType: "counter", AggregateID: "\ufffd typed", Expect: events.Any, Events: []events.Pending{ok}}}, nil
	}}); err != nil {
		t.Fatalf("a typed U+FFFD is text: %v", err)
	}
	mustVerify(t, f.db, 1)
}

// A full disk answers every write with errs.Unavailable and a plain
// message, Health says so, and writes work again once there is room.
func TestDiskFullAnswersUnavailable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.bump(ctx, "a", 1, events.Any, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.w.Health(); err != nil {
		t.Fatalf("health before any failure: %v", err)
	}
	pageCap(t, f.w, "1") // no page more than the file has now
	big := strings.Repeat("z", 5000)
	// Several at once, so that some share a batch with the failing one.
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.bump(ctx, fmt.Sprintf("%s%d", big, i), 1, events.Any, "")
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if errs.Code(err) != errs.Unavailable || errs.Message(err) != "The server cannot write: the disk is full. Nothing was saved." {
			t.Fatalf("write on a full disk: got %v (%q), want unavailable, disk full", err, errs.Message(err))
		}
	}
	if err := f.w.Health(); err == nil || err.Error() != "disk full" {
		t.Fatalf("health: got %v, want disk full", err)
	}
	mustVerify(t, f.db, 1)
	pageCap(t, f.w, "1073741823")
	if err := f.w.Health(); err != nil {
		t.Fatalf("health after a committed batch: %v", err)
	}
	if _, err := f.bump(ctx, big, 1, events.Any, ""); err != nil {
		t.Fatalf("write after making room: %v", err)
	}
	mustVerify(t, f.db, 2)
}

// pageCap sets max_page_count on the writer's own connection.
func pageCap(tb testing.TB, w *events.Writer, n string) {
	tb.Helper()
	if err := w.Exclusive(context.Background(), func(ctx context.Context, q events.Querier) error {
		_, err := q.ExecContext(ctx, "PRAGMA max_page_count = "+n)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
}
