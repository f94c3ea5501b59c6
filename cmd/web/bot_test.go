package main

import (
	"database/sql"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"braid/internal/events"
)

// TestBotTokenKeptToItsProject: an owner makes a bot token on a project's
// people page; it opens tickets there (201) and is refused everywhere else
// — another project it may see 403, one it may not 404, the admin page and
// account routes 403 — appending nothing; revoked, it is 401.
func TestBotTokenKeptToItsProject(t *testing.T) {
	a := newAccessSite(t)
	ada, olga, mia := a.people["admin"], a.people["owner"], a.people["member"]
	if r := ada.command("/projects", "/projects", url.Values{"slug": {"hidden"}, "name": {"Hidden"}}); r.status != http.StatusSeeOther {
		t.Fatalf("create hidden: got %d", r.status)
	}
	mainTicket := ada.post("/tickets", ada.form("/tickets/new", "/tickets", url.Values{"title": {"in main"}, "project": {"main"}}))
	if mainTicket.status != http.StatusSeeOther {
		t.Fatalf("open in main: got %d\n%.600s", mainTicket.status, mainTicket.body)
	}
	mainPath := mainTicket.location

	// Only an owner (or admin) may make one: a member is refused.
	if r := mia.post("/p/acme/tokens", url.Values{"_csrf": {csrfOf(t, mia.get("/tickets/new").body)}, "command_id": {events.NewID()}, "name": {"bot"}, "scopes": {"read"}, "expires": {"30"}}); r.status != http.StatusForbidden {
		t.Fatalf("member makes a bot token: got %d, want 403\n%.600s", r.status, r.body)
	}
	r := olga.post("/p/acme/tokens", olga.form("/p/acme/people", "/p/acme/tokens", url.Values{"name": {"acme-bot"}, "scopes": {"read,write"}, "expires": {"30"}}))
	m := newTokenRE.FindStringSubmatch(r.body)
	if r.status != http.StatusCreated || m == nil {
		t.Fatalf("make bot token: got %d, want 201 with the token\n%.2000s", r.status, r.body)
	}
	bot := script{t, a.s.URL, m[1]}

	// The log says which project the token is bound to (never the secret).
	db, err := sql.Open("sqlite", "file:"+a.s.DB+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var data string
	if err := db.QueryRow(`SELECT ` + payloadData + ` FROM events WHERE event_type = 'token_created' ORDER BY position DESC LIMIT 1`).Scan(&data); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(data, `"project":"acme"`) || strings.Contains(data, m[1]) {
		t.Fatalf("token_created: %s", data)
	}

	if r := bot.do("POST", "/tickets", `{"title":"from the bot","project":"acme"}`); r.status != http.StatusCreated || dig(r.json, "ticket", "author_username") != "olga" {
		t.Fatalf("bot opens in acme: got %d\n%s", r.status, r.raw)
	}
	r2 := bot.do("POST", "/tickets", `{"title":"no project named"}`)
	if r2.status != http.StatusCreated || dig(r2.json, "ticket", "project") != "acme" {
		t.Fatalf("bot opens without a project: got %d, want 201 in acme\n%s", r2.status, r2.raw)
	}
	if r := bot.do("GET", r2.location, ""); r.status != http.StatusOK {
		t.Fatalf("bot reads its ticket: got %d", r.status)
	}

	before := countEvents(t, a.s.DB)
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/tickets", `{"title":"elsewhere","project":"main"}`, 403},
		{"POST", "/tickets", `{"title":"hidden","project":"hidden"}`, 404},
		{"GET", "/p/main", "", 403},
		{"GET", "/p/hidden/people", "", 404},
		{"GET", mainPath, "", 403},
		{"POST", mainPath + "/comments", `{"body":"hi"}`, 403},
		{"GET", "/tickets", "", 403},
		{"GET", "/admin", "", 403},
		{"GET", "/projects", "", 403},
		{"POST", "/account/name", `{"name":"x"}`, 403},
		{"POST", "/p/acme/tokens", `{"name":"child","scopes":"read","expires":"7"}`, 403},
	} {
		if r := bot.do(c.method, c.path, c.body); r.status != c.want || dig(r.json, "error", "code") != float64(c.want) {
			t.Errorf("bot %s %s: got %d, want %d JSON\n%.400s", c.method, c.path, r.status, c.want, r.raw)
		}
	}
	if n := countEvents(t, a.s.DB); n != before {
		t.Fatalf("refusals appended %d events, want none", n-before)
	}

	// Its maker sees it among their tokens and revokes it: then 401.
	prof := olga.get("/people/olga")
	ids := regexp.MustCompile(`action="/account/tokens/([^/"]+)/revoke"`).FindAllStringSubmatch(prof.body, -1)
	if len(ids) != 1 || !strings.Contains(prof.body, "only project acme") {
		t.Fatalf("olga's tokens: %d revoke buttons\n%.2000s", len(ids), prof.body)
	}
	if r := olga.post("/account/tokens/"+ids[0][1]+"/revoke", url.Values{"_csrf": {csrfOf(t, prof.body)}, "command_id": {events.NewID()}}); r.status != http.StatusSeeOther {
		t.Fatalf("revoke: got %d", r.status)
	}
	if r := bot.do("GET", "/p/acme", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("revoked bot: got %d, want 401", r.status)
	}
}
