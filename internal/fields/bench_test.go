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
// every third, written straight into the projection tables (what replay
// would build), for the list's queries.
func benchDB(b *testing.B, n int) *events.DB {
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
			must(tx.Exec(`INSERT INTO ticket_fields (ticket_id, name, value) VALUES (?, 'priority', ?)`, i, prios[i%7%4]))
		}
		if i%3 == 0 {
			must(tx.Exec(`INSERT INTO ticket_fields (ticket_id, name, value) VALUES (?, 'points', ?)`, i, fmt.Sprint(i%100)))
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
	where, args, order, orderArgs, err := fields.ListClauses(ctx, db.Read, eq, sortBy)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		l, err := tickets.Query(ctx, db.Read, tickets.Filter{Where: where, WhereArgs: args, Order: order, OrderArgs: orderArgs})
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
