package search

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/migrations"
)

func TestParse(t *testing.T) {
	w := func(s string) []Term { return []Term{{Text: s}} }
	cases := []struct {
		in   string
		want Query
	}{
		{"login fails", Query{Words: [][]Term{w("login"), w("fails")}}},
		{`"login fails" safari`, Query{Words: [][]Term{{{Text: "login fails", Phrase: true}}, w("safari")}}},
		{`crash OR hang freeze`, Query{Words: [][]Term{{{Text: "crash"}, {Text: "hang"}}, w("freeze")}}},
		{`a OR b OR c`, Query{Words: [][]Term{{{Text: "a"}, {Text: "b"}, {Text: "c"}}}}},
		{`OR crash OR`, Query{Words: [][]Term{w("or"), w("crash"), w("or")}}},
		{`crash -windows -"blue screen"`, Query{Words: [][]Term{w("crash")}, Not: []Term{{Text: "windows"}, {Text: "blue screen", Phrase: true}}}},
		{`author:Ada assignee:bob label:bug label:"Needs Review" is:closed no:assignee no:label`,
			Query{Author: "Ada", Assignee: "bob", Labels: []string{"bug", "needs review"}, Status: "closed", NoAssignee: true, NoLabel: true}},
		{`IS:Open`, Query{Status: "open"}},
		{`TypeError: see https://example.com/a:b`, Query{Words: [][]Term{w("TypeError:"), w("see"), w("https://example.com/a:b")}}},
		{`"unbalanced quote`, Query{Words: [][]Term{{{Text: "unbalanced quote", Phrase: true}}}}},
		{`* ( ) - "" ^ :`, Query{}},
		{`NEAR(a b) AND NOT x`, Query{Words: [][]Term{w("NEAR(a"), w("b)"), w("AND"), w("NOT"), w("x")}}},
		{`東京 مرحبا`, Query{Words: [][]Term{w("東京"), w("مرحبا")}}},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): got error %v, want %+v", c.in, err, c.want)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Parse(%q):\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	cases := []struct{ in, want string }{
		{"crash foo:bar", "unknown filter foo:"},
		{"title:export", "unknown filter title:"},
		{"author:", "author: needs a value"},
		{"is:merged", "is:open or is:closed"},
		{"is:open is:closed", "either open or closed"},
		{"no:milestone", "no:assignee or no:label"},
		{"author:ada author:bob", "Give author: once"},
		{strings.Repeat("x", MaxChars+1), "Keep the search to 1000 characters; it has 1001"},
		{strings.Repeat("a ", MaxTerms+1), "at most 40 words"},
		{"\xff", "not valid UTF-8"},
	}
	for _, c := range cases {
		_, err := Parse(c.in)
		if errs.Code(err) != errs.Invalid || !strings.Contains(errs.Message(err), c.want) {
			t.Errorf("Parse(%.40q): got %v (code %q), want invalid saying %q", c.in, err, errs.Code(err), c.want)
		}
	}
	if _, err := Parse(strings.Repeat("x", MaxChars)); err != nil {
		t.Errorf("Parse of %d characters: got %v, want it searched", MaxChars, err)
	}
}

func TestFTSTerm(t *testing.T) {
	cases := []struct {
		t      Term
		prefix bool
		want   string
	}{
		{Term{Text: "login"}, true, `({title body comments labels} : "login"*)`},
		{Term{Text: "login"}, false, `({title body comments labels} : "login")`},
		{Term{Text: `say"hi`}, true, `({title body comments labels} : "say""hi"*)`},
		{Term{Text: "login fails", Phrase: true}, true, `({title body comments labels} : "login fails")`},
		{Term{Text: "東京都"}, true, `(cjk : "東京 京都")`},
		{Term{Text: "東"}, false, `(cjk : "東"*)`},
		{Term{Text: "Tokyo東京"}, true, `(cjk : "東京" AND {title body comments labels} : "Tokyo"*)`},
	}
	for _, c := range cases {
		if got := ftsTerm(c.t, wordCols, c.prefix); got != c.want {
			t.Errorf("ftsTerm(%+v, %v): got %s, want %s", c.t, c.prefix, got, c.want)
		}
	}
}

func TestMarkHTML(t *testing.T) {
	cases := []struct{ in, want string }{
		{"a " + open + "<script>" + shut + "alert(1)</script> & b", "a <mark>&lt;script&gt;</mark>alert(1)&lt;/script&gt; &amp; b"},
		{open + open + "x" + shut + shut + shut, "<mark>x</mark>"},
		{open + `"q'`, "<mark>&#34;q&#39;</mark>"},
	}
	for _, c := range cases {
		if got := markHTML(c.in); got != c.want {
			t.Errorf("markHTML(%q): got %q, want %q", c.in, got, c.want)
		}
	}
}

// searchDB is a migrated database holding one ticket of every kind of
// text, for checking that each parsed query is valid FTS5 and runs.
func searchDB(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := events.Open(context.Background(), filepath.Join(tb.TempDir(), "braid.db"), migrations.FS)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Write.Exec(`INSERT INTO search_fts (rowid, title, body, comments, labels, cjk) VALUES (1, 'Login fails', 'NEAR "AND" * ( 東京都庁', 'مرحبا بالعالم', 'bug', ?)`,
		cjkPieces("東京都庁")); err != nil {
		tb.Fatal(err)
	}
	return db.Write
}

// FuzzParse: whatever is typed, Parse does not panic, and what it accepts
// is FTS5 the index runs without a syntax error (each term quoted).
func FuzzParse(f *testing.F) {
	for _, s := range []string{`login`, `"a b" OR c -d`, `NEAR(a b, 2) AND NOT x*`, `"`, `""`, `"""`, `-"`, `a OR`, `OR`,
		`author:ada is:open label:"needs review"`, `東京 مرحبا`, `^a`, `{title}: x`, `col:"`, `a"b*c`, `- -- ---`, `x:y:z`,
		`*`, `(`, `)`, `+`, `"\x00"`, "\u0301", "ab\u0301c", "\uE000", `label:"` + strings.Repeat("x", 200)} {
		f.Add(s)
	}
	db := searchDB(f)
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err != nil {
			if errs.Code(err) != errs.Invalid {
				t.Fatalf("Parse(%q): got %v, want a clear invalid error", s, err)
			}
			return
		}
		p, err := plan(context.Background(), db, q)
		if err != nil {
			t.Fatalf("plan of %q: %v", s, err)
		}
		for _, e := range []string{p.match, p.not, p.rank, p.title} {
			if e == "" {
				continue
			}
			rows, err := db.Query(`SELECT rowid, snippet(search_fts, 1, '`+open+`', '`+shut+`', '…', 20) FROM search_fts WHERE search_fts MATCH ?`, e)
			if err == nil {
				for rows.Next() {
				}
				err = rows.Err()
				rows.Close()
			}
			if err != nil {
				t.Fatalf("Parse(%q) → %q: %v", s, e, err)
			}
		}
	})
}
