package tickets_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"braid/internal/auth"
	"braid/internal/erase"
	"braid/internal/events"
	"braid/internal/tickets"
	"braid/internal/tickets/tickettest"
	"braid/migrations"
)

// testLog is a real log in a SQLite file with the writer running and the
// services on top, as run builds them.
type testLog struct {
	db     *events.DB
	reg    *events.Registry
	types  tickets.Types
	tix    *tickets.Service
	people *auth.Service
}

func newTestLog(tb testing.TB, path string) *testLog {
	tb.Helper()
	ctx := context.Background()
	db, err := events.Open(ctx, path, migrations.FS)
	if err != nil {
		tb.Fatal(err)
	}
	reg := events.NewRegistry()
	erase.Register(reg)
	ut := auth.Register(reg)
	tt := tickets.Register(reg)
	// A clock that steps 1ms per command: deterministic for a seed.
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { now = now.Add(time.Millisecond); return now }
	w, err := events.NewWriter(ctx, db, reg, events.WriterOptions{Clock: clock})
	if err != nil {
		db.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		w.Close()
		db.Close()
	})
	return &testLog{db: db, reg: reg, types: tt, tix: tickets.NewService(w, reg, tt),
		people: &auth.Service{DB: db, Writer: w, Types: ut, Cost: bcrypt.MinCost, Override: auth.RegistrationOpen}}
}

// testSeed is $BRAID_SEED when set, else a fresh one; it is printed when
// the test fails so the run can be repeated.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BRAID_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("BRAID_SEED=%q: %v", s, err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d (repeat with BRAID_SEED=%d)", seed, seed)
		}
	})
	return seed
}

// TestAsOfMatchesProjectionAtEveryPosition generates a history, then
// rebuilds the read tables one event at a time in a second database and,
// after each event, compares the ticket that event touched (and one other
// ticket picked at random) as the projection had it then with AsOf at that
// position on the original log.
func TestAsOfMatchesProjectionAtEveryPosition(t *testing.T) {
	ctx := context.Background()
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x62726169640a))
	dir := t.TempDir()
	src := newTestLog(t, filepath.Join(dir, "source.db"))

	commands := 2000
	if testing.Short() {
		commands = 600
	}
	began := time.Now()
	sum, err := tickettest.Run(ctx, rng, src.tix, src.people, tickettest.Config{Users: 5, Commands: commands})
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	t.Logf("generated in %s: %d valid and %d invalid commands, %d events, %d tickets: %v", time.Since(began).Round(time.Millisecond), sum.Commands, sum.Invalid, sum.Events, sum.Tickets, sum.ByKind)
	if min := int64(commands) * 8 / 10; sum.Events < min {
		t.Fatalf("got %d events, want at least %d", sum.Events, min)
	}
	for _, k := range []string{"open", "edit", "assign", "unassign", "close", "reopen", "comment", "comment_twice", "edit_comment", "delete_comment"} {
		if sum.ByKind[k] == 0 && !testing.Short() {
			t.Errorf("the generator never issued %s: got %v", k, sum.ByKind)
		}
	}

	// The projection at P: a fresh database whose read tables receive the
	// log one event at a time, in one transaction read through as it goes.
	dst, err := events.Open(ctx, filepath.Join(dir, "replayed.db"), migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	reg := events.NewRegistry()
	erase.Register(reg)
	auth.Register(reg)
	tickets.Register(reg)
	tx, err := dst.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	var positions, checks, lastID int64
	failures := 0
	check := func(id, p int64) error {
		want, err := tickets.Get(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("projection of #%d at %d: %w", id, p, err)
		}
		got, err := src.types.AsOf(ctx, src.db.Read, src.reg, id, p)
		if err != nil {
			return fmt.Errorf("AsOf(#%d, %d): %w", id, p, err)
		}
		checks++
		if d := diffTickets(got, want); len(d) > 0 {
			failures++
			t.Errorf("position %d, ticket #%d: AsOf differs from the projection as it stood:\n%s", p, id, d)
			if failures >= 5 {
				return fmt.Errorf("too many differences")
			}
		}
		return nil
	}
	err = events.Scan(ctx, src.db.Read, 0, func(e *events.Event) error {
		positions++
		if err := reg.Apply(ctx, tx, e); err != nil {
			return err
		}
		if e.AggregateType != tickets.Aggregate {
			return nil
		}
		id, err := strconv.ParseInt(e.AggregateID, 10, 64)
		if err != nil {
			return fmt.Errorf("ticket id %q at %d: %w", e.AggregateID, e.Position, err)
		}
		lastID = max(lastID, id)
		if err := check(id, e.Position); err != nil {
			return err
		}
		// An untouched ticket must not show events from after P either.
		return check(1+rng.Int64N(lastID), e.Position)
	})
	if err != nil {
		t.Fatal(err)
	}
	if positions != src.tix.Writer.Head().Position {
		t.Fatalf("scanned %d positions, want %d", positions, src.tix.Writer.Head().Position)
	}

	// Replayed one at a time, the tables end where the writer left them.
	for id := int64(1); id <= sum.Tickets || id <= lastID; id++ {
		got, err := tickets.Get(ctx, tx, id)
		if err != nil {
			t.Fatal(err)
		}
		want, err := tickets.Get(ctx, src.db.Read, id)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffTickets(got, want); len(d) > 0 {
			t.Fatalf("ticket #%d replayed event by event differs from the live projection:\n%s", id, d)
		}
	}
	t.Logf("%d positions, %d comparisons", positions, checks)
}

// diffTickets lists the fields the pages show that differ, got before want.
func diffTickets(got, want tickets.Ticket) string {
	var out string
	field := func(name string, g, w any) {
		if fmt.Sprint(g) != fmt.Sprint(w) {
			out += fmt.Sprintf("  %s: got %.120q, want %.120q\n", name, fmt.Sprint(g), fmt.Sprint(w))
		}
	}
	field("id", got.ID, want.ID)
	field("title", got.Title, want.Title)
	field("body", got.Body, want.Body)
	if !slices.Equal(got.Labels, want.Labels) {
		out += fmt.Sprintf("  labels: got %q, want %q\n", got.Labels, want.Labels)
	}
	field("status", got.Status, want.Status)
	field("assignee", got.Assignee, want.Assignee)
	field("author", got.Author, want.Author)
	field("version", got.Version, want.Version)
	field("opened_at", got.OpenedAt, want.OpenedAt)
	field("updated_at", got.UpdatedAt, want.UpdatedAt)
	if len(got.Comments) != len(want.Comments) {
		out += fmt.Sprintf("  comments: got %d, want %d\n", len(got.Comments), len(want.Comments))
		return out
	}
	for i := range got.Comments {
		g, w := got.Comments[i], want.Comments[i]
		if g != w {
			out += fmt.Sprintf("  comment %d: got %+.120v, want %+.120v\n", i, g, w)
		}
	}
	return out
}
