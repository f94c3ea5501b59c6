package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Reads follow roles: for every read route, each role on the hidden
// project acme sees its ticket's events, or gets 404 or a page without
// them. nina held viewer, watched the ticket, and lost the role before the
// comments that told her inbox about it.
func TestReadRoleTable(t *testing.T) {
	a := newAccessSite(t)
	ada, olga, nina := a.people["admin"], a.people["owner"], a.people["none"]
	a.grant(t, ada, "nina", "viewer")
	tk := a.openIn(t, ada, "secret rocket")
	id := ticketIDRE.FindStringSubmatch(tk)[1]
	for _, role := range []string{"owner", "member", "reporter", "viewer", "none"} {
		if r := a.people[role].command(tk, tk+"/watch", nil); r.status != http.StatusSeeOther {
			t.Fatalf("%s watches %s: %d\n%.600s", role, tk, r.status, r.body)
		}
	}
	if r := ada.command("/p/acme/people", "/p/acme/people/revoke", url.Values{"person": {"nina"}}); r.status != http.StatusSeeOther {
		t.Fatalf("revoke nina: %d\n%.600s", r.status, r.body)
	}
	commentOn(t, ada, tk, "countdown")
	commentOn(t, olga, tk, "liftoff")
	db, err := sql.Open("sqlite", "file:"+a.s.DB+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var last, n int64 // olga's comment, the log's length
	if err := db.QueryRow(`SELECT MAX(position) FROM events WHERE aggregate_type = 'ticket' AND aggregate_id = ?`, id).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT MAX(position) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	waitCheckpoint(t, a.s.URL, n)
	link := `/tickets/` + id + `"`
	pos := fmt.Sprintf(`"position":%d,`, last)
	type row struct {
		route, path string
		json        bool
		shows       func(body string) bool // for a 200: does it show the hidden item?
		only        map[string]bool        // roles that may read it (nil: admin to viewer)
	}
	has := func(s string) func(string) bool { return func(b string) bool { return strings.Contains(b, s) } }
	single := func(string) bool { return true }
	rows := []row{
		{"ticket", tk, false, single, nil},
		{"ticket history", tk + "/history", false, single, nil},
		{"ticket proof bundle", tk + "/proof", false, single, nil},
		{"search", "/tickets?status=all&q=secret", false, has(`href="/tickets/` + id + `"`), nil},
		{"activity feed", "/events", false, has(link), nil},
		{"one event", fmt.Sprintf("/events/%d", last), false, single, nil},
		{"profile's recent activity", "/people/olga", true, has(pos), nil},
		{"inbox", "/inbox", false, has(`/tickets/` + id + `#comment-`), map[string]bool{"admin": true, "owner": true, "member": true, "reporter": true, "viewer": true}},
		{"entry bundles", fmt.Sprintf("/tile/entries/000.p/%d", n), false, has(`"event_type":"comment_added"`), map[string]bool{"admin": true}},
	}
	for _, r := range rows {
		for _, role := range []string{"admin", "owner", "member", "reporter", "viewer", "none"} {
			want := role != "none"
			if r.only != nil {
				want = r.only[role]
			}
			var hdr []string
			if r.json {
				hdr = []string{"Accept", "application/json"}
			}
			got := a.people[role].do("GET", r.path, nil, hdr...)
			sees := got.status == http.StatusOK && r.shows(got.body)
			if got.status != http.StatusOK && got.status != http.StatusNotFound {
				t.Errorf("%s (%s) as %s: got %d, want 200 or 404", r.route, r.path, role, got.status)
			} else if sees != want {
				t.Errorf("%s (%s) as %s: status %d, shows the hidden item %v, want %v\n%.800s", r.route, r.path, role, got.status, sees, want, got.body)
			}
		}
	}
	// nina's unread count leaves the hidden project out too.
	if got := nina.do("GET", "/inbox", nil, "Accept", "application/json"); !strings.Contains(got.body, `"unread":0,`) {
		t.Errorf("nina's inbox counts notifications of a project she lost:\n%.600s", got.body)
	}
	if got := a.people["viewer"].do("GET", "/inbox", nil, "Accept", "application/json"); !strings.Contains(got.body, `"unread":2,`) {
		t.Errorf("vic's inbox lacks the two comments:\n%.600s", got.body)
	}
}
