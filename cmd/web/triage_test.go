package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// listIDs asks the list for JSON and returns the ticket numbers in order.
func listIDs(tb testing.TB, b *browser, query string) []int64 {
	tb.Helper()
	a := b.do("GET", "/tickets?"+query, nil, "Accept", "application/json")
	if a.status != http.StatusOK {
		tb.Fatalf("GET /tickets?%s: got %d, want 200\n%.500s", query, a.status, a.body)
	}
	var l struct {
		Tickets []struct {
			ID int64 `json:"id"`
		} `json:"tickets"`
	}
	if err := json.Unmarshal([]byte(a.body), &l); err != nil {
		tb.Fatal(err)
	}
	ids := []int64{}
	for _, t := range l.Tickets {
		ids = append(ids, t.ID)
	}
	return ids
}

// The list's orders and filters over HTTP: recently updated (the
// default), newest, oldest, most commented; author, assignee (any case),
// unassigned, label absent; bad values are 422; the filters in force are
// shown, each with a link that removes it.
func TestTriageSortAndFilter(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	bob := newBrowser(t, s.URL).from("127.0.0.21")
	bob.register("bob")
	ada.open("one")  // #1
	ada.open("two")  // #2
	ada.open("tri")  // #3
	bob.open("four") // #4
	ada.comment("/tickets/2", "a comment")
	ada.comment("/tickets/1", "first")
	ada.comment("/tickets/1", "second")
	if a := ada.command("/tickets/3", "/tickets/3/assign", url.Values{"assignee": {"bob"}}); a.status != http.StatusSeeOther {
		t.Fatalf("assign: got %d, want 303\n%.500s", a.status, a.body)
	}
	// #3 is updated last now (assigned); then #1, #2 (comments), #4.
	cases := []struct {
		query string
		want  []int64
	}{
		{"", []int64{3, 1, 2, 4}},
		{"sort=updated", []int64{3, 1, 2, 4}},
		{"sort=created", []int64{4, 3, 2, 1}},
		{"sort=created-asc", []int64{1, 2, 3, 4}},
		{"sort=comments", []int64{1, 2, 4, 3}},
		{"author=BOB", []int64{4}},
		{"author=ada&sort=created", []int64{3, 2, 1}},
		{"author=nobody-by-that-name", []int64{}},
		{"assignee=Bob", []int64{3}},
		{"no_assignee=1&sort=created", []int64{4, 2, 1}},
		{"no_label=bug", []int64{}},
		{"no_label=wontfix&author=bob", []int64{4}},
		{"no_assignee=1&author=bob", []int64{4}},
	}
	for _, c := range cases {
		if got := listIDs(t, ada, c.query); !slices.Equal(got, c.want) {
			t.Errorf("/tickets?%s: got %v, want %v", c.query, got, c.want)
		}
	}
	for _, q := range []string{"sort=random", "no_assignee=yes", "no_label=" + strings.Repeat("x", 101)} {
		if a := ada.get("/tickets?" + q); a.status != http.StatusUnprocessableEntity {
			t.Errorf("/tickets?%s: got %d, want 422", q, a.status)
		}
	}
	// Filters in force are shown, each removable; the pick-list offers people.
	page := ada.get("/tickets?author=bob&no_assignee=1&sort=comments")
	for _, want := range []string{"opened by bob", "unassigned", `href="/tickets?no_assignee=1&amp;sort=comments&amp;status=open"`,
		`href="/tickets?author=bob&amp;sort=comments&amp;status=open"`, `<option value="comments" selected>`, `<option value="bob">`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("list page lacks %s", want)
		}
	}
}

// The assignee pick-list of a project's list offers those who hold a role
// there, not everyone.
func TestTriagePickList(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	newBrowser(t, s.URL).from("127.0.0.22").register("bob")
	newBrowser(t, s.URL).from("127.0.0.23").register("cyd")
	if r := ada.command("/projects", "/projects", url.Values{"slug": {"acme"}, "name": {"Acme"}}); r.status != http.StatusSeeOther {
		t.Fatalf("create acme: got %d\n%.500s", r.status, r.body)
	}
	if r := ada.command("/p/acme/people", "/p/acme/people", url.Values{"person": {"bob"}, "role": {"member"}}); r.status != http.StatusSeeOther {
		t.Fatalf("grant: got %d\n%.500s", r.status, r.body)
	}
	page := ada.get("/p/acme").body
	if !strings.Contains(page, `<option value="bob">`) || strings.Contains(page, `<option value="cyd">`) {
		t.Errorf("acme's pick-list: want bob and not cyd\n%s", page[strings.Index(page, `<datalist`):][:300])
	}
	if page := ada.get("/tickets").body; !strings.Contains(page, `<option value="cyd">`) {
		t.Errorf("the list of every project offers everyone; cyd missing")
	}
}

// A bulk request as a person with mixed rights: each ticket checked on its
// own, refused ones append nothing and say why, the rest are appended
// next to each other in one commit; the same form posted again repeats
// (appends nothing); JSON works; more than 100 tickets is 422.
func TestTriageBulk(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	rita := newBrowser(t, s.URL).from("127.0.0.24")
	rita.register("rita")
	if r := ada.command("/projects", "/projects", url.Values{"slug": {"acme"}, "name": {"Acme"}}); r.status != http.StatusSeeOther {
		t.Fatalf("create acme: got %d\n%.500s", r.status, r.body)
	}
	if r := ada.command("/p/acme/people", "/p/acme/people", url.Values{"person": {"rita"}, "role": {"reporter"}}); r.status != http.StatusSeeOther {
		t.Fatalf("grant: got %d\n%.500s", r.status, r.body)
	}
	ada.open("main one") // #1: rita is a member of main (everyone is)
	ada.open("main two") // #2
	if r := ada.post("/tickets", ada.form("/tickets/new?project=acme", "/tickets", url.Values{"title": {"acme one"}, "project": {"acme"}})); r.status != http.StatusSeeOther {
		t.Fatalf("open in acme: got %d", r.status)
	}
	ada.post("/tickets", ada.form("/tickets/new?project=acme", "/tickets", url.Values{"title": {"acme two"}, "project": {"acme"}})) // #4

	before := countEvents(t, s.DB)
	f := rita.form("/tickets", "/tickets/bulk", url.Values{"action": {"close"}, "tickets": {"1", "3", "2", "99"}})
	a := rita.post("/tickets/bulk", f)
	if a.status != http.StatusOK {
		t.Fatalf("bulk close: got %d, want 200\n%.1000s", a.status, a.body)
	}
	for _, want := range []string{"2 done, 2 not changed", "#3</a> not changed: ", "a reporter", "There is no ticket #99"} {
		if !strings.Contains(a.body, want) {
			t.Errorf("bulk answer lacks %q\n%.2000s", want, a.body)
		}
	}
	if n := countEvents(t, s.DB); n != before+2 {
		t.Fatalf("got %d events appended, want 2", n-before)
	}
	// The two closes are neighbours in the log, one after the other.
	db, err := sql.Open("sqlite", "file:"+s.DB+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT position, aggregate_id, event_type FROM events ORDER BY position DESC LIMIT 2`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var p int64
		var id, typ string
		rows.Scan(&p, &id, &typ)
		got = append(got, fmt.Sprintf("%d %s %s", p, id, typ))
	}
	rows.Close()
	if want := []string{fmt.Sprintf("%d 2 ticket_closed", before+2), fmt.Sprintf("%d 1 ticket_closed", before+1)}; !slices.Equal(got, want) {
		t.Errorf("last events: got %v, want %v", got, want)
	}
	// The same form again: each ticket's command repeats; nothing appended.
	a = rita.post("/tickets/bulk", f)
	if a.status != http.StatusOK || !strings.Contains(a.body, "done (already, by this same request before)") {
		t.Errorf("bulk again: got %d\n%.1500s", a.status, a.body)
	}
	if n := countEvents(t, s.DB); n != before+2 {
		t.Errorf("bulk again appended %d events, want 0", n-before-2)
	}

	// JSON: labels as ada on #1, #3 and #4 (#4 already has bug).
	body := `{"tickets":[1,3,4],"action":"label","label":"Triaged"}`
	j := jsonPost(t, ada, "/tickets/bulk", body)
	if j.status != http.StatusOK || !strings.Contains(j.body, `{"ticket":1,"done":true}`) || !strings.Contains(j.body, `{"ticket":3,"done":true}`) {
		t.Errorf("bulk JSON: got %d %s", j.status, j.body)
	}
	if got := listIDs(t, ada, "status=all&label=triaged&sort=created-asc"); !slices.Equal(got, []int64{1, 3, 4}) {
		t.Errorf("labelled triaged: got %v, want [1 3 4]", got)
	}
	j = jsonPost(t, ada, "/tickets/bulk", `{"tickets":[1,2],"action":"unlabel","label":"triaged"}`)
	if !strings.Contains(j.body, `{"ticket":1,"done":true}`) || !strings.Contains(j.body, `"ticket":2,"done":false,"code":"conflict"`) {
		t.Errorf("bulk unlabel: got %d %s", j.status, j.body)
	}
	j = jsonPost(t, ada, "/tickets/bulk", `{"tickets":[3,4],"action":"assign","assignee":"RITA"}`)
	if !strings.Contains(j.body, `{"ticket":3,"done":true}`) || !strings.Contains(j.body, `{"ticket":4,"done":true}`) {
		t.Errorf("bulk assign: got %d %s", j.status, j.body)
	}
	if got := listIDs(t, ada, "status=all&assignee=rita&sort=created-asc"); !slices.Equal(got, []int64{3, 4}) {
		t.Errorf("assigned to rita: got %v, want [3 4]", got)
	}

	// Refused whole: too many tickets, no action, unknown person.
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprint(i + 1)
	}
	n := countEvents(t, s.DB)
	for _, c := range []string{`{"tickets":[` + strings.Join(many, ",") + `],"action":"close"}`, `{"tickets":[1],"action":"explode"}`,
		`{"tickets":[1],"action":"assign","assignee":"nobody"}`, `{"tickets":["x"],"action":"close"}`, `{"tickets":[],"action":"close"}`,
		`{"tickets":[1],"action":"label","label":"a,b"}`} {
		if j := jsonPost(t, ada, "/tickets/bulk", c); j.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: got %d, want 422\n%s", c, j.status, j.body)
		}
	}
	if got := countEvents(t, s.DB); got != n {
		t.Errorf("refused bulk requests appended %d events", got-n)
	}
	verifyDB(t, s.DB)
}

// jsonPost sends a JSON body with the browser's session and CSRF token.
func jsonPost(tb testing.TB, b *browser, path, body string) answer {
	tb.Helper()
	csrf := b.form("/tickets", "/tickets/bulk", nil).Get("_csrf")
	req, err := http.NewRequest("POST", b.base+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-CSRF-Token", csrf)
	res, err := b.c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return answer{status: res.StatusCode, body: sb.String(), header: res.Header}
}

// Saved views belong to their person: saved with a name, listed beside
// the list for them alone, refused when the query holds unknown
// parameters or the name is too long, deleted by their owner only.
func TestTriageSavedViews(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	bob := newBrowser(t, s.URL).from("127.0.0.25")
	bob.register("bob")
	a := ada.post("/tickets/views", ada.form("/tickets?author=bob&sort=comments", "/tickets/views", url.Values{"name": {"Bob's busiest"}}))
	if a.status != http.StatusSeeOther || a.location != "/tickets?author=bob&sort=comments&status=open" {
		t.Fatalf("save view: got %d to %q", a.status, a.location)
	}
	if page := ada.get("/tickets").body; !strings.Contains(page, `href="/tickets?author=bob&amp;sort=comments&amp;status=open"`) || !strings.Contains(page, "Bob&#39;s busiest") {
		t.Errorf("ada's list does not show her view")
	}
	if page := bob.get("/tickets").body; strings.Contains(page, "busiest") {
		t.Errorf("bob's list shows ada's view")
	}
	// bob cannot delete it: he has no view by that name.
	n := countEvents(t, s.DB)
	if a := bob.post("/tickets/views/delete", bob.form("/tickets", "/tickets/views", url.Values{"name": {"Bob's busiest"}})); a.status != http.StatusNotFound {
		t.Errorf("bob deletes ada's view: got %d, want 404", a.status)
	}
	for _, c := range []url.Values{{"name": {strings.Repeat("n", 61)}, "query": {"status=open"}}, {"name": {"x"}, "query": {"evil=1"}},
		{"name": {"x"}, "query": {"sort=random"}}, {"name": {"x"}, "query": {"q=" + strings.Repeat("a", 501)}}, {"name": {" "}, "query": {""}}} {
		f := ada.form("/tickets", "/tickets/views", c)
		if a := ada.do("POST", "/tickets/views", f, "Accept", "application/json"); a.status != http.StatusUnprocessableEntity {
			t.Errorf("save view %v: got %d, want 422\n%s", c, a.status, a.body)
		}
	}
	if got := countEvents(t, s.DB); got != n {
		t.Errorf("refusals appended %d events", got-n)
	}
	if a := ada.post("/tickets/views/delete", ada.form("/tickets", "/tickets/views", url.Values{"name": {"Bob's busiest"}})); a.status != http.StatusSeeOther {
		t.Errorf("ada deletes her view: got %d, want 303", a.status)
	}
	if page := ada.get("/tickets").body; strings.Contains(page, `href="/tickets?author=bob&amp;sort=comments&amp;status=open"`) {
		t.Errorf("deleted view still listed")
	}
}
