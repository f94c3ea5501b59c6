package search

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"braid/internal/events"
	"braid/internal/tickets"
	"braid/migrations"
)

// The benchmark's data set: 100,000 tickets and 1,000,000 comments of
// Zipf-distributed words (some tickets with Japanese text), built once and
// kept under os.TempDir; bump benchVersion when its shape changes.
const (
	benchVersion  = "v2"
	benchTickets  = 100_000
	benchComments = 1_000_000
	benchUsers    = 50
)

// benchWords is a vocabulary of made-up words, most frequent first.
func benchWords() []string {
	syl := []string{"ka", "lo", "mi", "ter", "an", "sol", "vi", "ro", "den", "pu", "ex", "qua", "zor", "nel", "bri", "fo", "gal", "hu", "jen", "ty"}
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	var out []string
	for len(out) < 20000 {
		n := 2 + r.IntN(3)
		var b strings.Builder
		for range n {
			b.WriteString(syl[r.IntN(len(syl))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

var japanese = []string{"昨日、東京都庁に行きました。", "ログイン画面が表示されません。", "大阪の倉庫で在庫がずれています。", "検索結果が正しくありません。"}

func benchDB(b *testing.B) *events.DB {
	b.Helper()
	path := filepath.Join(os.TempDir(), "braid-search-bench-"+benchVersion+".db")
	ctx := context.Background()
	if _, err := os.Stat(path); err != nil {
		tmp := path + ".building"
		os.Remove(tmp)
		start := time.Now()
		db, err := events.Open(ctx, tmp, migrations.FS)
		if err != nil {
			b.Fatal(err)
		}
		if err := fillBench(ctx, db.Write); err != nil {
			b.Fatal(err)
		}
		db.Close()
		if err := os.Rename(tmp, path); err != nil {
			b.Fatal(err)
		}
		b.Logf("built %s in %v", path, time.Since(start).Round(time.Second))
	}
	db, err := events.Open(ctx, path, migrations.FS)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// fillBench writes the read tables and the index straight, in one
// transaction (the index from a scratch table in one statement).
func fillBench(ctx context.Context, db *sql.DB) error {
	words := benchWords()
	r := rand.New(rand.NewPCG(3, 4))
	z := rand.NewZipf(rand.New(rand.NewPCG(5, 6)), 1.07, 2, uint64(len(words)-1))
	text := func(n int) string {
		ws := make([]string, n)
		for i := range ws {
			ws[i] = words[z.Uint64()]
		}
		return strings.Join(ws, " ")
	}
	labels := []string{"bug", "ui", "performance", "docs", "security", "needs-review"}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	exec := func(q string, args ...any) {
		if err == nil {
			_, err = tx.ExecContext(ctx, q, args...)
		}
	}
	for i := range benchUsers {
		exec(`INSERT INTO users (id, display_name, registered_at, username) VALUES (?, ?, '2026-01-01T00:00:00Z', ?)`,
			fmt.Sprintf("p_%016d", i), fmt.Sprintf("User %d", i), fmt.Sprintf("user%d", i))
	}
	exec(`CREATE TEMP TABLE docs (id INTEGER PRIMARY KEY, title, body, comments, labels, cjk)`)
	prep := func(q string) *sql.Stmt {
		s, e := tx.PrepareContext(ctx, q)
		if e != nil && err == nil {
			err = e
		}
		return s
	}
	tk := prep(`INSERT INTO tickets (id, title, body, status, assignee, author, version, comment_count, opened_at, updated_at, project) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, 'main')`)
	lb := prep(`INSERT INTO ticket_labels (ticket_id, label) VALUES (?, ?)`)
	cm := prep(`INSERT INTO search_comments (ticket_id, id, author, body) VALUES (?, ?, ?, ?)`)
	dc := prep(`INSERT INTO docs (id, title, body, comments, labels, cjk) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	user := func() string { return fmt.Sprintf("p_%016d", r.IntN(benchUsers)) }
	open, closed := 0, 0
	comments := 0
	for id := 1; id <= benchTickets && err == nil; id++ {
		title, body := text(6), text(40)
		if r.IntN(100) < 3 {
			body += " " + japanese[r.IntN(len(japanese))]
		}
		status := "open"
		if r.IntN(10) < 3 {
			status, closed = "closed", closed+1
		} else {
			open++
		}
		assignee := ""
		if r.IntN(2) == 0 {
			assignee = user()
		}
		n := 2 * (benchComments - comments) / (benchTickets - id + 1) * r.IntN(101) / 100 // about 10 on average
		if id == benchTickets {
			n = benchComments - comments
		}
		var cs []string
		for c := 1; c <= n; c++ {
			body := text(20)
			cs = append(cs, body)
			if _, e := cm.ExecContext(ctx, id, c, user(), body); e != nil {
				return e
			}
		}
		comments += n
		var ls []string
		for _, l := range labels {
			if r.IntN(5) == 0 {
				ls = append(ls, l)
				if _, e := lb.ExecContext(ctx, id, l); e != nil {
					return e
				}
			}
		}
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(id) * time.Minute).Format(time.RFC3339Nano)
		if _, e := tk.ExecContext(ctx, id, title, body, status, assignee, user(), n, at, at); e != nil {
			return e
		}
		all := strings.Join(cs, commentSep)
		lab := strings.Join(ls, " ")
		if _, e := dc.ExecContext(ctx, id, title, body, all, lab, cjkPieces(title, body, all, lab)); e != nil {
			return e
		}
	}
	exec(`INSERT INTO search_fts (rowid, title, body, comments, labels, cjk) SELECT id, title, body, comments, labels, cjk FROM docs ORDER BY id`)
	exec(`DROP TABLE temp.docs`)
	exec(`INSERT INTO search_fts (search_fts) VALUES ('optimize')`)
	exec(`DELETE FROM ticket_counts`)
	exec(`INSERT INTO ticket_counts (status, n) VALUES ('open', ?), ('closed', ?)`, open, closed)
	if err != nil {
		return err
	}
	return tx.Commit()
}

// BenchmarkSearch runs what the list page does for a search (parse,
// resolve names, count, rank a page, cut snippets) over 100k tickets and
// 1M comments, one query shape per sub-benchmark, and reports the median.
//
//	go test -run '^$' -bench BenchmarkSearch -benchtime 200x ./internal/search
func BenchmarkSearch(b *testing.B) {
	db := benchDB(b)
	words := benchWords()
	ctx := context.Background()
	shapes := []struct{ name, q string }{
		{"common word", words[2]},
		{"medium word", words[300]},
		{"rare word", words[15000]},
		{"two words", words[40] + " " + words[90]},
		{"prefix", words[500][:4]},
		{"phrase", `"` + words[2] + " " + words[3] + `"`},
		{"CJK inside a run", "東京"},
		{"OR and exclusion", words[800] + " OR " + words[900] + " -" + words[5]},
		{"filters only", "is:open label:bug no:assignee"},
		{"word with filters", words[300] + " author:user7 label:bug is:open"},
	}
	var pooled []time.Duration
	for _, s := range shapes {
		b.Run(s.name, func(b *testing.B) {
			var took []time.Duration
			var found int64
			for b.Loop() {
				start := time.Now()
				f := tickets.Filter{Q: s.q, Status: "all"}
				if err := (Searcher{}).Apply(ctx, db.Read, &f); err != nil {
					b.Fatal(err)
				}
				l, err := tickets.Query(ctx, db.Read, f)
				if err != nil {
					b.Fatal(err)
				}
				if err := (Searcher{}).Snippets(ctx, db.Read, l.Filter, l.Tickets); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
				found = l.Total
			}
			pooled = append(pooled, took...)
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)*9/10].Microseconds())/1000, "p90-ms")
			b.ReportMetric(float64(found), "matches")
		})
	}
	// The searches above taken together, as many of each kind: what a
	// mix of them would see.
	b.Run("all kinds pooled", func(b *testing.B) {
		for b.Loop() {
		}
		if len(pooled) == 0 {
			b.Skip("no searches ran")
		}
		slices.Sort(pooled)
		b.ReportMetric(float64(pooled[len(pooled)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(pooled[len(pooled)*9/10].Microseconds())/1000, "p90-ms")
	})
}
