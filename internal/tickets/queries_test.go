package tickets_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"braid/internal/errs"
	"braid/internal/tickets"
)

// FuzzSearch feeds any string to the list's text search over a real SQLite
// database with the FTS table: the answer is a list or a refusal
// (errs.Invalid), never a database error and never a panic.
func FuzzSearch(f *testing.F) {
	for _, s := range []string{"", "export", "\x00", `"`, `""`, "*", "export*", "NEAR(", "NEAR(a b)", "AND", "a OR b", "NOT x",
		"-", "^", ":", "title:export", "(", ")", "{title}: x", "ü ß 漢字", "\xff\xfe", "a\tb\nc", "\x1b[31m", "'", "\\",
		strings.Repeat("a ", 300), strings.Repeat("x", 10000)} {
		f.Add(s)
	}
	ctx := context.Background()
	tl := newTestLog(f, filepath.Join(f.TempDir(), "braid.db"))
	for i, title := range []string{"Export button does nothing", "Login fails on Firefox", "Ünïcödé title", `"quoted" NEAR(AND) *`} {
		d := tickets.Draft{Title: title, Body: fmt.Sprintf("body %d: steps to see it", i)}
		if _, err := tl.tix.Open(ctx, "ada", d, fmt.Sprintf("%032x", i+1)); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, q string) {
		for _, status := range []string{"open", "all"} {
			l, err := tickets.Query(ctx, tl.db.Read, tickets.Filter{Status: status, Q: q})
			if err != nil {
				if errs.Code(err) != errs.Invalid {
					t.Fatalf("search %q: %v; want a list or an invalid-input error", q, err)
				}
				if errs.Fields(err)["q"] == "" {
					t.Fatalf("search %q refused without a message beside q: %v", q, err)
				}
				continue
			}
			if int64(len(l.Tickets)) > l.Total {
				t.Fatalf("search %q: %d rows, total %d", q, len(l.Tickets), l.Total)
			}
		}
	})
}

func TestSearchFindsWords(t *testing.T) {
	ctx := context.Background()
	tl := newTestLog(t, filepath.Join(t.TempDir(), "braid.db"))
	for i, title := range []string{"Export button does nothing", "Login fails", `Say "hello" NEAR(here)`} {
		if _, err := tl.tix.Open(ctx, "ada", tickets.Draft{Title: title}, fmt.Sprintf("%032x", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		q    string
		want int
	}{
		{"export", 1}, {"EXPORT button", 1}, {"export login", 0}, {`"hello"`, 1}, {"NEAR(here)", 1},
		{"hello\x00", 1}, {"\x00", 3}, {"*", 0}, {"AND", 0}, {"", 3},
	}
	for _, c := range cases {
		l, err := tickets.Query(ctx, tl.db.Read, tickets.Filter{Q: c.q})
		if err != nil || len(l.Tickets) != c.want {
			t.Errorf("search %q: got %d tickets, err %v; want %d", c.q, len(l.Tickets), err, c.want)
		}
	}
}
