package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

var taskFormRE = `action="/tickets/1/tasks"`

// TestTickTasks: a box of the description's task list is ticked by
// whoever may edit the ticket, as a ticket_edited changing exactly that
// box; the boxes are the ones drawn (not a "[ ]" in code); a stale page is
// 409, a task that is not there 422, someone who may not edit 403, each
// appending nothing; a token with JSON ticks too.
func TestTickTasks(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	body := "Release:\n\n- [ ] tag it\n- [x] write notes\n\n```\n- [ ] not a task\n```\n\n- [ ] tell people"
	ticket := ada.open("Release 2.0")
	f := ada.form(ticket+"/edit", "", url.Values{"body": {body}, "_method": {"PATCH"}})
	if a := ada.post(ticket, f); a.status != http.StatusSeeOther {
		t.Fatalf("edit: %d\n%.500s", a.status, a.body)
	}
	page := ada.get(ticket).body
	if n := strings.Count(page, taskFormRE); n != 3 {
		t.Fatalf("the page offers %d task forms, want 3 (the code block's is not a task)", n)
	}
	if !strings.Contains(page, "Tasks: 1 of 3 done") {
		t.Errorf("the page does not count the tasks")
	}
	version := func() string {
		var v struct {
			Ticket struct{ Version int64 } `json:"ticket"`
		}
		ada.getJSON(ticket, &v)
		return strconv.FormatInt(v.Ticket.Version, 10)
	}
	stored := func() string {
		var v struct {
			Ticket struct{ Body string } `json:"ticket"`
		}
		ada.getJSON(ticket, &v)
		return v.Ticket.Body
	}
	tick := func(b *browser, index, checked, ver string) answer {
		return b.post(ticket+"/tasks", b.form(ticket, "", url.Values{"index": {index}, "checked": {checked}, "version": {ver}}))
	}
	n := countEvents(t, s.DB)
	if a := tick(ada, "2", "1", version()); a.status != http.StatusSeeOther {
		t.Fatalf("tick: %d\n%.500s", a.status, a.body)
	}
	if got, want := stored(), strings.Replace(body, "- [ ] tell people", "- [x] tell people", 1); got != want {
		t.Fatalf("after ticking the third task the description is\n%q\nwant\n%q", got, want)
	}
	if got := countEvents(t, s.DB) - n; got != 1 {
		t.Fatalf("a tick appended %d events", got)
	}
	n = countEvents(t, s.DB)
	for _, c := range []struct {
		name                string
		index, checked, ver string
		status              int
	}{
		{"stale page", "0", "1", "1", http.StatusConflict},
		{"no such task", "3", "1", "", http.StatusUnprocessableEntity},
		{"bad index", "x", "1", "", http.StatusUnprocessableEntity},
		{"bad checked", "0", "yes", "", http.StatusUnprocessableEntity},
	} {
		v := c.ver
		if v == "" {
			v = version()
		}
		if a := tick(ada, c.index, c.checked, v); a.status != c.status {
			t.Errorf("%s: %d, want %d", c.name, a.status, c.status)
		}
	}
	// Another person reusing ada's command id (it is on her page, so it is
	// public): refused, nothing appended, ada's tick not repeated for him.
	mallory := newBrowser(t, s.URL).from("127.0.0.3")
	mallory.register("mallory")
	used := ada.form(ticket, "", url.Values{"index": {"0"}, "checked": {"1"}, "version": {version()}})
	if a := ada.post(ticket+"/tasks", used); a.status != http.StatusSeeOther {
		t.Fatalf("ada ticks: %d", a.status)
	}
	n = countEvents(t, s.DB)
	stolen := mallory.form(ticket, "", url.Values{"index": {"0"}, "checked": {"0"}, "version": {version()}})
	stolen.Set("command_id", used.Get("command_id"))
	if a := mallory.post(ticket+"/tasks", stolen); a.status < 400 || a.status >= 500 {
		t.Errorf("a reused command id from someone else: %d, want a 4xx", a.status)
	}
	for _, bad := range []string{"", strings.Repeat("9", 5000), "\xff\xfe", "1\x00"} {
		if a := tick(ada, bad, "1", version()); a.status != http.StatusUnprocessableEntity {
			t.Errorf("index %q: %d, want 422", bad, a.status)
		}
	}
	if got := countEvents(t, s.DB) - n; got != 0 {
		t.Fatalf("refusals appended %d events", got)
	}
	if !strings.Contains(stored(), "- [x] tag it") {
		t.Fatalf("the reused id undid ada's tick")
	}
	n = countEvents(t, s.DB)
	// Someone who may only read: 403.
	ada.command("/p/main/people", "/p/main/everyone", url.Values{"on": {"0"}})
	bob := newBrowser(t, s.URL).from("127.0.0.2")
	bob.register("bob")
	ada.command("/p/main/people", "/p/main/people", url.Values{"person": {"bob"}, "role": {"viewer"}})
	if a := tick(bob, "0", "1", version()); a.status != http.StatusForbidden {
		t.Errorf("a viewer ticks: %d, want 403", a.status)
	}
	if got := countEvents(t, s.DB) - n; got != 3 { // the setting, bob's registration and role, nothing else
		t.Errorf("refusals appended %d events beyond the setting, bob's registration and his role", got-3)
	}
	// A script: a token and JSON.
	tok := script{t, s.URL, makeToken(t, ada, "ada", "ci", "read", "write")}
	r := tok.do("POST", ticket+"/tasks", `{"index":1,"checked":false,"version":`+version()+`}`)
	if r.status != http.StatusOK || !strings.Contains(stored(), "- [ ] write notes") {
		t.Fatalf("JSON tick: %d\n%.500s", r.status, r.raw)
	}
	verifyDB(t, s.DB)
}

// getJSON reads path as JSON into v.
func (b *browser) getJSON(path string, v any) {
	b.tb.Helper()
	a := b.do("GET", path, nil, "Accept", "application/json")
	if a.status != http.StatusOK {
		b.tb.Fatalf("GET %s: %d\n%.500s", path, a.status, a.body)
	}
	if err := json.Unmarshal([]byte(a.body), v); err != nil {
		b.tb.Fatal(err)
	}
}
