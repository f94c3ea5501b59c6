package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// inboxJSON is what GET /inbox answers a script.
type inboxJSON struct {
	Notifications []struct {
		Position  int64  `json:"position"`
		TicketID  int64  `json:"ticket_id"`
		Actor     string `json:"actor"`
		Kind      string `json:"kind"`
		Mentioned bool   `json:"mentioned"`
		Read      bool   `json:"read"`
		Text      string `json:"text"`
		Link      string `json:"link"`
	} `json:"notifications"`
	Unread    int    `json:"unread"`
	Total     int    `json:"total"`
	UpTo      int64  `json:"up_to"`
	Email     string `json:"email"`
	CSRF      string `json:"csrf"`
	CommandID string `json:"command_id"`
}

func (b *browser) inbox() inboxJSON {
	b.tb.Helper()
	a := b.do("GET", "/inbox", nil, "Accept", "application/json")
	if a.status != http.StatusOK {
		b.tb.Fatalf("GET /inbox (JSON): got %d, want 200\n%s", a.status, a.body)
	}
	var v inboxJSON
	if err := json.Unmarshal([]byte(a.body), &v); err != nil {
		b.tb.Fatalf("GET /inbox (JSON): %v\n%s", err, a.body)
	}
	return v
}

// texts lists the inbox's lines, newest first.
func (v inboxJSON) texts() []string {
	var out []string
	for _, n := range v.Notifications {
		out = append(out, n.Text)
	}
	return out
}

var unreadBadgeRE = regexp.MustCompile(`class="badge unread-count"[^>]*>(\d+)<`)

// headerCount is the unread count drawn in the header of page ("" when none).
func (b *browser) headerCount(page string) string {
	b.tb.Helper()
	a := b.get(page)
	if a.status != http.StatusOK {
		b.tb.Fatalf("GET %s: got %d", page, a.status)
	}
	if m := unreadBadgeRE.FindStringSubmatch(a.body); m != nil {
		return m[1]
	}
	return ""
}

// command posts a form from the page's hidden fields (token and a fresh
// command id) with fields, to action.
func (b *browser) command(page, action string, fields url.Values) answer {
	b.tb.Helper()
	return b.post(action, b.form(page, action, fields))
}

func (b *browser) comment(ticket, body string) {
	b.tb.Helper()
	if a := b.command(ticket, ticket+"/comments", url.Values{"body": {body}}); a.status != http.StatusSeeOther {
		b.tb.Fatalf("comment on %s: got %d, want 303\n%.600s", ticket, a.status, a.body)
	}
}

// Watches and notifications over HTTP against a real server: who starts
// watching on open, assign, comment and @mention, by hand with Watch and
// Unwatch; who is told (never the actor, never someone not watching); mark
// read and mark all read; the header's count; each person sees only their
// own inbox; every refusal appends nothing.
func TestNotifications(t *testing.T) {
	s := startServer(t)
	people := map[string]*browser{}
	for i, name := range []string{"alice", "bob", "carol", "dave", "erin", "frank", "gina"} {
		b := newBrowser(t, s.URL).from(fmt.Sprintf("127.0.0.%d", 20+i))
		b.register(name)
		people[name] = b
	}
	alice, bob, carol, dave, erin, frank, gina := people["alice"], people["bob"], people["carol"], people["dave"], people["erin"], people["frank"], people["gina"]

	// Alice opens a ticket mentioning carol (and someone who does not exist).
	a := alice.post("/tickets", alice.form("/tickets/new", "", url.Values{"title": {"Printer on fire"},
		"body": {"It smokes. cc @carol and @nobody, mail me at alice@example.org"}, "labels": {""}}))
	if a.status != http.StatusSeeOther {
		t.Fatalf("open: got %d\n%s", a.status, a.body)
	}
	ticket := a.location // /tickets/1
	if got := carol.inbox().texts(); len(got) != 1 || got[0] != "alice mentioned you in a new ticket, #1 Printer on fire" {
		t.Fatalf("carol's inbox after the mention: got %q", got)
	}
	if got := alice.inbox(); got.Total != 0 {
		t.Fatalf("alice is told of her own ticket: %q", got.texts())
	}

	// Bob's comment tells Alice (who opened) and Carol, not Bob.
	bob.comment(ticket, "Same here.")
	v := alice.inbox()
	if got := v.texts(); len(got) != 1 || got[0] != "bob commented on #1 Printer on fire" || v.Notifications[0].Link != "/tickets/1#comment-1" || v.Unread != 1 {
		t.Fatalf("alice's inbox after bob's comment: got %+v", v)
	}
	if got := bob.inbox(); got.Total != 0 {
		t.Fatalf("bob is told of his own comment: %q", got.texts())
	}
	if got := alice.headerCount("/tickets"); got != "1" {
		t.Fatalf("alice's header count: got %q, want 1", got)
	}
	if got := gina.inbox(); got.Total != 0 || gina.headerCount("/tickets") != "" {
		t.Fatalf("gina watches nothing and is told: %q", got.texts())
	}
	// The inbox page says it in words, links the comment and marks it unread.
	page := alice.get("/inbox").body
	for _, want := range []string{`Bob commented on <a href="/tickets/1#comment-1">#1 Printer on fire</a>`, `class="unread"`, `>New<`, "Mark all read"} {
		if !strings.Contains(page, want) {
			t.Fatalf("alice's inbox page lacks %q\n%s", want, page)
		}
	}

	// Assigning dave makes him a watcher and tells him.
	if a := alice.command(ticket, ticket+"/assign", url.Values{"assignee": {"dave"}}); a.status != http.StatusSeeOther {
		t.Fatalf("assign: got %d", a.status)
	}
	if got := dave.inbox().texts(); len(got) != 1 || got[0] != "alice assigned you to #1 Printer on fire" {
		t.Fatalf("dave's inbox: got %q", got)
	}
	if got := bob.inbox().texts(); len(got) != 1 || got[0] != "alice assigned dave to #1 Printer on fire" {
		t.Fatalf("bob's inbox (a watcher since his comment): got %q", got)
	}

	// A mention in a comment makes erin a watcher and says so.
	bob.comment(ticket, "@erin, can you look?")
	if v := erin.inbox(); len(v.Notifications) != 1 || !v.Notifications[0].Mentioned || v.Notifications[0].Text != "bob mentioned you in a comment on #1 Printer on fire" {
		t.Fatalf("erin's inbox: got %+v", v)
	}

	// Frank watches by hand: the ticket page offers Watch, then Unwatch.
	if page := frank.get(ticket).body; !strings.Contains(page, `action="/tickets/1/watch"`) {
		t.Fatalf("frank's ticket page has no Watch button")
	}
	if page := bob.get(ticket).body; !strings.Contains(page, `action="/tickets/1/unwatch"`) {
		t.Fatalf("bob's ticket page (he watches) has no Unwatch button")
	}
	before := countEvents(t, s.DB)
	if a := frank.command(ticket, "/tickets/1/watch", nil); a.status != http.StatusSeeOther || a.location != ticket {
		t.Fatalf("watch: got %d %q", a.status, a.location)
	}
	if got := countEvents(t, s.DB); got != before+1 {
		t.Fatalf("watch appended %d events, want 1", got-before)
	}
	if page := frank.get(ticket).body; !strings.Contains(page, `action="/tickets/1/unwatch"`) {
		t.Fatalf("after watching, frank's page has no Unwatch button")
	}
	alice.command(ticket, ticket+"/close", nil)
	if got := frank.inbox().texts(); len(got) != 1 || got[0] != "alice closed #1 Printer on fire" {
		t.Fatalf("frank's inbox after the close: got %q", got)
	}
	if a := frank.command(ticket, "/tickets/1/unwatch", nil); a.status != http.StatusSeeOther {
		t.Fatalf("unwatch: got %d", a.status)
	}
	alice.command(ticket, ticket+"/reopen", nil)
	if got := frank.inbox().texts(); len(got) != 1 {
		t.Fatalf("frank unwatched and is still told: %q", got)
	}
	if got := bob.inbox().texts(); len(got) != 3 || got[0] != "alice reopened #1 Printer on fire" {
		t.Fatalf("bob's inbox: got %q", got)
	}

	// Refusals append nothing: a ticket that does not exist, a reused or
	// missing command id, a notification that is someone else's, a bad
	// address. Watching what one watches already appends nothing either.
	before = countEvents(t, s.DB)
	f := frank.form(ticket, "/tickets/1/watch", nil)
	for _, c := range []struct {
		name   string
		b      *browser
		action string
		form   url.Values
		want   int
	}{
		{"watch a ticket that is not there", frank, "/tickets/99/watch", f, http.StatusNotFound},
		{"watch with a command id that is not one", frank, "/tickets/1/watch", url.Values{"_csrf": f["_csrf"], "command_id": {"x"}}, http.StatusUnprocessableEntity},
		{"watch with no CSRF token", frank, "/tickets/1/watch", url.Values{"command_id": f["command_id"]}, http.StatusForbidden},
		{"bob marks alice's notification read", bob, "/inbox/read", bob.form("/inbox", "/inbox/read", url.Values{"up_to": nil, "position": {fmt.Sprint(v.Notifications[0].Position)}}), http.StatusNotFound},
		{"a position that is not a number", bob, "/inbox/read", bob.form("/inbox", "/inbox/read", url.Values{"up_to": {"x"}}), http.StatusUnprocessableEntity},
		{"an address that is not one", alice, "/inbox/email", alice.form("/inbox", "/inbox/email", url.Values{"email": {"Alice <alice@example.org>"}}), http.StatusUnprocessableEntity},
		{"an address on two lines", alice, "/inbox/email", alice.form("/inbox", "/inbox/email", url.Values{"email": {"a@example.org\nBcc: b@example.org"}}), http.StatusUnprocessableEntity},
		{"an address too long", alice, "/inbox/email", alice.form("/inbox", "/inbox/email", url.Values{"email": {strings.Repeat("a", 250) + "@example.org"}}), http.StatusUnprocessableEntity},
	} {
		a := c.b.post(c.action, c.form)
		if a.status != c.want {
			t.Errorf("%s: got %d, want %d\n%.400s", c.name, a.status, c.want, a.body)
		}
	}
	if a := bob.post("/tickets/1/watch", bob.form(ticket, "/tickets/1/unwatch", nil)); a.status != http.StatusSeeOther {
		t.Errorf("watching again: got %d, want 303", a.status)
	}
	if got := countEvents(t, s.DB); got != before {
		t.Fatalf("refusals appended %d events", got-before)
	}
	// The bad address is kept in the form with its message beside it.
	if a := alice.post("/inbox/email", alice.form("/inbox", "/inbox/email", url.Values{"email": {"not an address"}})); !strings.Contains(a.body, `value="not an address"`) || !strings.Contains(a.body, `id="email-error"`) {
		t.Fatalf("the refused address is not shown again with its message:\n%s", a.body)
	}

	// Mark read, one notification, then all.
	v = bob.inbox()
	if v.Unread != 3 {
		t.Fatalf("bob's unread: got %d, want 3", v.Unread)
	}
	one := v.Notifications[1].Position
	if a := bob.post("/inbox/read", url.Values{"_csrf": {v.CSRF}, "command_id": {v.CommandID}, "position": {fmt.Sprint(one)}}); a.status != http.StatusSeeOther {
		t.Fatalf("mark read: got %d\n%s", a.status, a.body)
	}
	v = bob.inbox()
	if v.Unread != 2 || !v.Notifications[1].Read || v.Notifications[0].Read || bob.headerCount("/inbox") != "2" {
		t.Fatalf("after marking one read: %+v", v)
	}
	if a := bob.command("/inbox", "/inbox/read", nil); a.status != http.StatusSeeOther { // the first form: Mark all read
		t.Fatalf("mark all read: got %d", a.status)
	}
	if v = bob.inbox(); v.Unread != 0 || bob.headerCount("/tickets") != "" {
		t.Fatalf("after mark all read: %+v", v)
	}
	// A new event after that is unread again.
	alice.comment(ticket, "Fixed, I think.")
	if v = bob.inbox(); v.Unread != 1 || v.Notifications[0].Text != "alice commented on #1 Printer on fire" {
		t.Fatalf("bob after alice's comment: %+v", v)
	}
	// The htmx fragment carries the same count.
	if a := bob.get("/inbox/badge"); !strings.Contains(a.body, ">1<") || strings.Contains(a.body, "<html") {
		t.Fatalf("badge fragment: %s", a.body)
	}

	// Each person sees only their own: bob's inbox holds nothing of
	// carol's mention, and the address alice sets is hers alone.
	for _, n := range bob.inbox().Notifications {
		if n.Mentioned {
			t.Fatalf("bob sees a mention that was not his: %+v", n)
		}
	}
	if a := alice.command("/inbox", "/inbox/email", url.Values{"email": {"alice.digest@example.org"}}); a.status != http.StatusSeeOther {
		t.Fatalf("set email: got %d\n%s", a.status, a.body)
	}
	if got := alice.inbox().Email; got != "alice.digest@example.org" {
		t.Fatalf("alice's address: got %q", got)
	}
	if got := bob.inbox().Email; got != "" {
		t.Fatalf("bob's address: got %q", got)
	}
	head := countEvents(t, s.DB)
	for _, path := range []string{fmt.Sprintf("/events/%d", head), "/events"} {
		if a := bob.do("GET", path, nil, "Accept", "application/json"); strings.Contains(a.body, "alice.digest@example.org") || !strings.Contains(a.body, "personal data") {
			t.Fatalf("bob reads alice's address at %s:\n%.600s", path, a.body)
		}
		if a := bob.get(path); strings.Contains(a.body, "alice.digest@example.org") {
			t.Fatalf("bob reads alice's address on %s", path)
		}
		if a := alice.do("GET", path, nil, "Accept", "application/json"); !strings.Contains(a.body, "alice.digest@example.org") {
			t.Fatalf("alice cannot read her own address at %s", path)
		}
	}
	if page := alice.get("/inbox").body; !strings.Contains(page, `value="alice.digest@example.org"`) {
		t.Fatalf("alice's inbox does not show her address")
	}
	if page := bob.get("/inbox").body; strings.Contains(page, "alice.digest@example.org") {
		t.Fatalf("bob's inbox shows alice's address")
	}

	// Signed out, the inbox is a sign-in away.
	if a := newBrowser(t, s.URL).get("/inbox"); a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/login") {
		t.Fatalf("signed out /inbox: got %d %q", a.status, a.location)
	}
	verifyDB(t, s.DB)
}
