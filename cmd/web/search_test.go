package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// openFull opens a ticket with title, body and labels as b; its path.
func (b *browser) openFull(title, body, labels string) string {
	b.tb.Helper()
	a := b.post("/tickets", b.form("/tickets/new", "", url.Values{"title": {title}, "body": {body}, "labels": {labels}}))
	if a.status != http.StatusSeeOther {
		b.tb.Fatalf("open %q: got %d, want 303\n%.600s", title, a.status, a.body)
	}
	return a.location
}

var resultRE = regexp.MustCompile(`<a href="/tickets/(\d+)" dir="auto">`)

// found lists the tickets (their paths) a search shows, in order.
func (b *browser) found(q string) []string {
	b.tb.Helper()
	a := b.get("/tickets?status=all&sort=created&q=" + url.QueryEscape(q)) // filters alone list newest first; words rank
	if a.status != http.StatusOK {
		b.tb.Fatalf("search %q: got %d, want 200\n%.600s", q, a.status, a.body)
	}
	out := []string{}
	for _, m := range resultRE.FindAllStringSubmatch(a.body, -1) {
		out = append(out, "/tickets/"+m[1])
	}
	return out
}

// searchSite is a site with ada and bob and tickets of every kind of text.
type searchSite struct {
	s                                           *testServer
	ada, bob                                    *browser
	export, dash, tokyo, arabic, crash, mention string
}

func newSearchSite(t *testing.T) *searchSite {
	t.Helper()
	s := startServer(t)
	x := &searchSite{s: s, ada: newBrowser(t, s.URL), bob: newBrowser(t, s.URL).from("127.0.0.21")}
	x.ada.register("ada")
	x.bob.register("bob")
	x.export = x.ada.openFull("Export button does nothing", "Clicking it shows <script>alert(1)</script> in the console", "bug, ui")
	x.dash = x.bob.openFull("Slow dashboard", "The page takes ages to load.", "performance")
	x.ada.comment(x.dash, "Profiling shows the serializer is the bottleneck")
	x.tokyo = x.ada.openFull("Office trip", "昨日、東京都庁に行きました。", "")
	x.arabic = x.bob.openFull("مشكلة في تسجيل الدخول", "لا يمكنني تسجيل الدخول إلى حسابي", "needs review")
	x.crash = x.ada.openFull("Crash on startup", "segfault in the renderer", "bug")
	if a := x.ada.command(x.crash, x.crash+"/close", nil); a.status != http.StatusSeeOther {
		t.Fatalf("close: got %d, want 303", a.status)
	}
	if a := x.ada.command(x.dash, x.dash+"/assign", url.Values{"assignee": {"ada"}}); a.status != http.StatusSeeOther {
		t.Fatalf("assign: got %d, want 303\n%.600s", a.status, a.body)
	}
	x.mention = x.bob.openFull("Docs", "Mention the dashboard in the guide", "docs")
	return x
}

// Each part of the search language finds what it should and only that,
// on the list page: prefixes, phrases, OR, -word, the filters, CJK words
// inside a run, Arabic, ranking, snippets (escaped, in a comment by whom).
func TestSearchLanguage(t *testing.T) {
	x := newSearchSite(t)
	ada := x.ada
	cases := []struct {
		q    string
		want []string
	}{
		{"export", []string{x.export}},
		{"expo", []string{x.export}}, // a prefix, as people type
		{"EXPORT BUTTON", []string{x.export}},
		{"seriali", []string{x.dash}},     // in a comment
		{"performance", []string{x.dash}}, // a label
		{`"takes ages"`, []string{x.dash}},
		{`"ages takes"`, []string{}},
		{`"take"`, []string{}},                                // a phrase is whole words
		{"dashboard", []string{x.dash, x.mention}},            // the title ranks above the body
		{"segfault OR serializer", []string{x.crash, x.dash}}, // the body ranks above a comment
		{"bug -segfault", []string{x.export}},
		{"author:bob", []string{x.mention, x.arabic, x.dash}},
		{"author:BOB dashboard", []string{x.dash, x.mention}},
		{"assignee:ada", []string{x.dash}},
		{"label:bug", []string{x.crash, x.export}},
		{`label:"needs review"`, []string{x.arabic}},
		{"label:bug label:ui", []string{x.export}},
		{"is:closed", []string{x.crash}},
		{"is:open bug", []string{x.export}},
		{"no:label", []string{x.tokyo}},
		{"no:assignee dashboard", []string{x.mention}},
		{"東京", []string{x.tokyo}}, // inside the run 東京都庁に行きました
		{"都庁", []string{x.tokyo}},
		{"東京都庁", []string{x.tokyo}},
		{"大阪", []string{}},
		{"الدخول", []string{x.arabic}},
		{"حسابي", []string{x.arabic}},
		{`NEAR("a" AND *)`, []string{}},
	}
	for _, c := range cases {
		if got := ada.found(c.q); !reflect.DeepEqual(got, c.want) {
			t.Errorf("search %q: got %v, want %v", c.q, got, c.want)
		}
	}

	// Snippets: the words marked, the text escaped, a comment's author named.
	page := ada.get("/tickets?status=all&q=" + url.QueryEscape("script"))
	if !strings.Contains(page.body, "&lt;<mark>script</mark>&gt;alert(1)&lt;/") || strings.Contains(page.body, "<script>alert") {
		t.Errorf("snippet of a body with <script>: want it escaped with the word marked\n%.3000s", page.body)
	}
	page = ada.get("/tickets?status=all&q=seriali")
	if !strings.Contains(page.body, "in a comment by") || !strings.Contains(page.body, ">Ada</a>") || !strings.Contains(page.body, "<mark>serializer</mark>") {
		t.Errorf("snippet of a comment: want \"in a comment by Ada\" and the word marked\n%.3000s", page.body)
	}
	page = ada.get("/tickets?status=all&q=" + url.QueryEscape("東京"))
	if !strings.Contains(page.body, "昨日、<mark>東京</mark>都庁に行きました。") {
		t.Errorf("snippet of a CJK run: want 東京 marked in it\n%.3000s", page.body)
	}

	// A snippet shows the text as a reader sees it, without its Markdown;
	// a word found only in a link's address shows as typed.
	x.ada.comment(x.tokyo, "## Steps\n1. Open **the zebrafish** page\n2. See [the notes](https://example.com/quokka)")
	page = ada.get("/tickets?status=all&q=zebrafish")
	if !strings.Contains(page.body, "Steps Open the <mark>zebrafish</mark> page") || strings.Contains(page.body, "**") {
		t.Errorf("snippet of a Markdown comment: want it without ## and **\n%.3000s", page.body)
	}
	page = ada.get("/tickets?status=all&q=quokka")
	if !strings.Contains(page.body, "https://example.com/<mark>quokka</mark>") {
		t.Errorf("snippet of a word in a link's address: want it as typed\n%.3000s", page.body)
	}

	// JSON carries the snippet.
	j := ada.do("GET", "/tickets?status=all&q=seriali", nil, "Accept", "application/json")
	var l struct {
		Tickets []struct {
			ID                int64  `json:"id"`
			Snippet           string `json:"snippet"`
			SnippetIn         string `json:"snippet_in"`
			SnippetByUsername string `json:"snippet_by_username"`
		} `json:"tickets"`
	}
	if err := json.Unmarshal([]byte(j.body), &l); err != nil || len(l.Tickets) != 1 {
		t.Fatalf("JSON search: got %d %v %.600s, want one ticket", j.status, err, j.body)
	}
	if r := l.Tickets[0]; r.SnippetIn != "comment" || r.SnippetByUsername != "ada" || !strings.Contains(r.Snippet, "<mark>serializer</mark>") {
		t.Errorf("JSON search: got %+v, want a snippet in ada's comment with serializer marked", r)
	}

	// What cannot be searched is told, with a 422, and appends nothing.
	before := countEvents(t, x.s.DB)
	for _, c := range []struct{ q, want string }{
		{"crash foo:bar", "unknown filter foo:"},
		{"author:nobody", "nobody is called"},
		{"is:merged", "is:open or is:closed"},
		{strings.Repeat("é", 1001), "Keep the search to 1000 characters"},
	} {
		a := ada.get("/tickets?q=" + url.QueryEscape(c.q))
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, c.want) || !strings.Contains(a.body, `id="q-error"`) {
			t.Errorf("search %.30q: got %d, want 422, the list saying %q beside the search box\n%.600s", c.q, a.status, c.want, a.body)
		}
	}
	if got := ada.found(strings.Repeat("é", 1000)); len(got) != 0 {
		t.Errorf("search of 1000 characters: got %v, want nothing found", got)
	}
	if after := countEvents(t, x.s.DB); after != before {
		t.Errorf("searches appended %d events, want none", after-before)
	}
}

// The index follows every change: edited titles, bodies and labels, edited
// and deleted comments.
func TestSearchFollowsChanges(t *testing.T) {
	x := newSearchSite(t)
	ada, bob := x.ada, x.bob
	edit := func(b *browser, tk string, f url.Values) {
		t.Helper()
		f.Set("_method", "PATCH")
		if a := b.post(tk, b.form(tk+"/edit", "", f)); a.status != http.StatusSeeOther {
			t.Fatalf("edit %s: got %d, want 303\n%.600s", tk, a.status, a.body)
		}
	}
	edit(bob, x.dash, url.Values{"title": {"Sluggish overview"}, "labels": {"speed"}})
	for q, want := range map[string][]string{"sluggish": {x.dash}, "slow": {}, "speed": {x.dash}, "label:speed": {x.dash},
		"performance": {}, "label:performance": {}, "seriali": {x.dash}} {
		if got := ada.found(q); !reflect.DeepEqual(got, want) {
			t.Errorf("after editing the ticket, search %q: got %v, want %v", q, got, want)
		}
	}
	c := x.dash + "/comments/1"
	if a := ada.post(c, ada.form(c+"/edit", "", url.Values{"body": {"It is the ORM after all"}, "_method": {"PATCH"}})); a.status != http.StatusSeeOther {
		t.Fatalf("edit comment: got %d\n%.600s", a.status, a.body)
	}
	for q, want := range map[string][]string{"serializer": {}, "orm": {x.dash}} {
		if got := ada.found(q); !reflect.DeepEqual(got, want) {
			t.Errorf("after editing the comment, search %q: got %v, want %v", q, got, want)
		}
	}
	if a := ada.post(c, ada.form(c+"/delete", "", url.Values{"_method": {"DELETE"}})); a.status != http.StatusSeeOther {
		t.Fatalf("delete comment: got %d\n%.600s", a.status, a.body)
	}
	if got := ada.found("orm"); len(got) != 0 {
		t.Errorf("after deleting the comment, search orm: got %v, want nothing", got)
	}
}

// Replay rebuilds the index row for row, and it is the one the server kept.
func TestSearchReplayIdentical(t *testing.T) {
	x := newSearchSite(t)
	x.ada.comment(x.tokyo, "大阪にも行きたい")
	x.s.stop()
	dump := func() string {
		t.Helper()
		db, err := sql.Open("sqlite", x.s.DB)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var b strings.Builder
		for _, q := range []string{`SELECT rowid, title, body, comments, labels, cjk FROM search_fts ORDER BY rowid`,
			`SELECT ticket_id, id, author, body FROM search_comments ORDER BY ticket_id, id`,
			`SELECT rowid FROM search_fts WHERE search_fts MATCH 'cjk : "大阪"'`} {
			rows, err := db.Query(q)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				v := make([]any, len(cols))
				p := make([]any, len(cols))
				for i := range v {
					p[i] = &v[i]
				}
				if err := rows.Scan(p...); err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "%q\n", v)
			}
			rows.Close()
			b.WriteString("--\n")
		}
		return b.String()
	}
	before := dump()
	if !strings.Contains(before, "serializer") || !strings.Contains(before, "東京 京都 都庁") || strings.Count(before, "\n") < 10 {
		t.Fatalf("index before replay lacks rows:\n%s", before)
	}
	if code, out, errb := runWeb(t, "replay", "--db", x.s.DB); code != 0 {
		t.Fatalf("replay: exit %d\n%s%s", code, out, errb)
	}
	if after := dump(); after != before {
		t.Errorf("index after replay differs:\n got %s\nwant %s", after, before)
	}
}

// A ticket in a project one may not see never shows in a search, even
// when every word matches, in any field; those who may see it find it.
func TestSearchRespectsAccess(t *testing.T) {
	a := newAccessSite(t)
	ada, nina, vic := a.people["admin"], a.people["none"], a.people["viewer"]
	tk := a.openIn(t, ada, "zebra launch codes")
	commentOn(t, ada, tk, "the quagga protocol")
	for _, q := range []string{"zebra", "zeb", "quagga", `"launch codes"`, "zebra OR quagga", "author:ada zebra", "is:open quagga"} {
		if got := nina.found(q); len(got) != 0 {
			t.Errorf("nina (no role in acme) searches %q: got %v, want nothing", q, got)
		}
		if got := vic.found(q); !reflect.DeepEqual(got, []string{tk}) {
			t.Errorf("vic (viewer in acme) searches %q: got %v, want [%s]", q, got, tk)
		}
	}
	j := nina.do("GET", "/tickets?status=all&q=quagga", nil, "Accept", "application/json")
	if strings.Contains(j.body, "quagga") && strings.Contains(j.body, "snippet") || strings.Contains(j.body, "zebra") {
		t.Errorf("nina's JSON search shows acme's ticket: %.600s", j.body)
	}
}
