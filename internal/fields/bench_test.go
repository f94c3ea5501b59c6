package fields_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"braid/internal/events"
	"braid/internal/fields"
	"braid/internal/tickets"
	"braid/migrations"
)

// benchDB is a database of n tickets in the default project with a
// one-of field "priority" set on every other one and a number field on
// every third, written straight into the projection tables with their
// sort keys (what replay would build), for the list's queries.
func benchDB(b testing.TB, n int) *events.DB {
	b.Helper()
	ctx := context.Background()
	db, err := events.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), migrations.FS)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	must := func(_ any, err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(tx.Exec(`INSERT INTO project_fields (project, name, kind, choices, seq) VALUES ('main', 'priority', 'one_of', '["low","normal","high","urgent"]', 1), ('main', 'points', 'number', '[]', 2)`))
	prios := []string{"low", "normal", "high", "urgent"}
	for i := 1; i <= n; i++ {
		at := fmt.Sprintf("2026-01-01T00:00:%09dZ", i)
		must(tx.Exec(`INSERT INTO tickets (id, title, body, status, author, version, opened_at, updated_at, project) VALUES (?, ?, '', 'open', 'p_a', 1, ?, ?, 'main')`, i, fmt.Sprintf("ticket %d", i), at, at))
		if i%2 == 0 {
			must(tx.Exec(`INSERT INTO ticket_fields (ticket_id, name, value, sort_key) VALUES (?, 'priority', ?, ?)`, i, prios[i%7%4], i%7%4))
		}
		if i%3 == 0 {
			must(tx.Exec(`INSERT INTO ticket_fields (ticket_id, name, value, sort_key) VALUES (?, 'points', ?, ?)`, i, fmt.Sprint(i%100), float64(i%100)))
		}
	}
	must(tx.Exec(`INSERT INTO ticket_counts (status, n) VALUES ('open', ?) ON CONFLICT (status) DO UPDATE SET n = excluded.n`, n))
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	must(db.Write.Exec(`ANALYZE`))
	return db
}

func benchList(b *testing.B, eq map[string]string, sortBy string) {
	ctx := context.Background()
	db := benchDB(b, 100_000)
	where, args, keyed, err := fields.ListClauses(ctx, db.Read, eq, sortBy)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		l, err := tickets.Query(ctx, db.Read, tickets.Filter{Where: where, WhereArgs: args, Keyed: keyed})
		if err != nil || len(l.Tickets) == 0 {
			b.Fatalf("%v, %d rows", err, len(l.Tickets))
		}
	}
}

// go test -run '^$' -bench . ./internal/fields
func BenchmarkListFilterByField100k(b *testing.B) {
	benchList(b, map[string]string{"priority": "urgent"}, "")
}

func BenchmarkListSortByOneOf100k(b *testing.B) { benchList(b, nil, "priority") }

func BenchmarkListSortByNumber100k(b *testing.B) { benchList(b, nil, "points") }

// The list sorted by a field pages through the tickets with a value in
// the order of its choices, then those without one, newest first: every
// ticket once, across the page where the one kind gives way to the other.
func TestSortByFieldPages(t *testing.T) {
	ctx := context.Background()
	db := benchDB(t, 60) // priority on the 30 even tickets
	_, _, keyed, err := fields.ListClauses(ctx, db.Read, nil, "priority")
	if err != nil {
		t.Fatal(err)
	}
	rank := map[string]int{"low": 0, "normal": 1, "high": 2, "urgent": 3}
	var got []int64
	for page := 1; page <= 3; page++ {
		l, err := tickets.Query(ctx, db.Read, tickets.Filter{Keyed: keyed, Page: page, Status: "all"})
		if err != nil {
			t.Fatal(err)
		}
		if l.Total != 60 || l.Pages != 3 {
			t.Fatalf("page %d: total %d, pages %d", page, l.Total, l.Pages)
		}
		for _, r := range l.Tickets {
			got = append(got, r.ID)
		}
	}
	if len(got) != 60 {
		t.Fatalf("got %d tickets over three pages: %v", len(got), got)
	}
	prios := []string{"low", "normal", "high", "urgent"}
	seen := map[int64]bool{}
	for i, id := range got {
		if seen[id] {
			t.Fatalf("#%d twice: %v", id, got)
		}
		seen[id] = true
		switch {
		case i < 30 && id%2 != 0:
			t.Fatalf("place %d is #%d, which has no priority: %v", i, id, got)
		case i > 0 && i < 30:
			a, b := rank[prios[got[i-1]%7%4]], rank[prios[id%7%4]]
			if a > b || (a == b && got[i-1] < id) {
				t.Fatalf("#%d before #%d: not in the order of the choices, then newest: %v", got[i-1], id, got)
			}
		case i >= 30 && (id%2 == 0 || (i > 30 && got[i-1] < id)):
			t.Fatalf("the tickets without a priority are not last, newest first: %v", got)
		}
	}
}
