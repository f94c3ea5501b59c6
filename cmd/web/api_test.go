package main

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"braid/internal/events"
)

var newTokenRE = regexp.MustCompile(`<code id="new-token">(brd_[A-Za-z0-9_-]{43})</code>`)

// makeToken makes a personal access token on the person's profile page, as
// a browser does, and returns the secret it shows once.
func makeToken(tb testing.TB, b *browser, user, name string, scopes ...string) string {
	tb.Helper()
	f := b.form("/people/"+user, "/account/tokens", url.Values{"name": {name}, "scopes": scopes, "expires": {"30"}})
	a := b.post("/account/tokens", f)
	m := newTokenRE.FindStringSubmatch(a.body)
	if a.status != http.StatusCreated || m == nil {
		tb.Fatalf("make token: got %d, want 201 with the token\n%.2000s", a.status, a.body)
	}
	return m[1]
}

// script is a client with only a token: no cookies, no CSRF token.
type script struct {
	tb    testing.TB
	base  string
	token string
}

type reply struct {
	status   int
	location string
	header   http.Header
	json     map[string]any
	raw      string
}

func (s script) do(method, path, body string, hdr ...string) reply {
	s.tb.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+path, r)
	if err != nil {
		s.tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.tb.Fatal(err)
	}
	defer res.Body.Close()
	bs, _ := io.ReadAll(res.Body)
	out := reply{status: res.StatusCode, location: res.Header.Get("Location"), header: res.Header, raw: string(bs)}
	json.Unmarshal(bs, &out.json)
	return out
}

// dig follows keys into decoded JSON: dig(m, "ticket", "title").
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestTokenScriptJSON drives the command routes as a script does: a token
// and JSON bodies, no cookie and no CSRF token. Each refusal is JSON in the
// one error shape and appends nothing.
func TestTokenScriptJSON(t *testing.T) {
	srv := startServer(t)
	b := newBrowser(t, srv.URL)
	b.register("alice")
	writer := script{t, srv.URL, makeToken(t, b, "alice", "ci-bot", "read", "write")}
	reader := script{t, srv.URL, makeToken(t, b, "alice", "dashboard", "read")}
	admin := script{t, srv.URL, makeToken(t, b, "alice", "admin-bot", "admin")}
	revoked := script{t, srv.URL, makeToken(t, b, "alice", "old", "read", "write")}
	f := b.form("/people/alice", "", nil)
	var revokeID string
	if m := regexp.MustCompile(`action="/account/tokens/([^/"]+)/revoke"`).FindAllStringSubmatch(b.get("/people/alice").body, -1); len(m) == 4 {
		revokeID = m[0][1] // newest first: "old"
	} else {
		t.Fatalf("want 4 revoke buttons, got %d", len(m))
	}
	if a := b.post("/account/tokens/"+revokeID+"/revoke", url.Values{"_csrf": f["_csrf"], "command_id": {events.NewID()}}); a.status != http.StatusSeeOther {
		t.Fatalf("revoke: got %d", a.status)
	}
	key := events.NewID()

	steps := []struct {
		name     string
		who      script
		method   string
		path     string
		body     string
		hdr      []string
		status   int
		location string
		check    func(t *testing.T, r reply)
		appends  bool
	}{
		{name: "open", who: writer, method: "POST", path: "/tickets", body: `{"title":"Build failed","body":"see CI","labels":["ci","bot"]}`,
			status: 201, location: "/tickets/1", appends: true, check: func(t *testing.T, r reply) {
				if dig(r.json, "ticket", "title") != "Build failed" || dig(r.json, "ticket", "author_username") != "alice" {
					t.Errorf("ticket: %s", r.raw)
				}
				if l, _ := dig(r.json, "ticket", "labels").([]any); len(l) != 2 {
					t.Errorf("labels: %s", r.raw)
				}
			}},
		{name: "comment", who: writer, method: "POST", path: "/tickets/1/comments", body: `{"body":"on it"}`,
			status: 201, location: "/tickets/1/comments/1", appends: true, check: func(t *testing.T, r reply) {
				if r.json["body"] != "on it" || r.json["author_username"] != "alice" || r.json["ticket"] != 1.0 || r.json["id"] != 1.0 {
					t.Errorf("comment: %s", r.raw)
				}
			}},
		{name: "assign", who: writer, method: "POST", path: "/tickets/1/assign", body: `{"assignee":"alice"}`, status: 200, appends: true,
			check: func(t *testing.T, r reply) {
				if dig(r.json, "ticket", "assignee_username") != "alice" {
					t.Errorf("assign: %s", r.raw)
				}
			}},
		{name: "close with no body", who: writer, method: "POST", path: "/tickets/1/close", status: 200, appends: true,
			check: func(t *testing.T, r reply) {
				if dig(r.json, "ticket", "status") != "closed" {
					t.Errorf("close: %s", r.raw)
				}
			}},
		{name: "edit comment", who: writer, method: "PATCH", path: "/tickets/1/comments/1", body: `{"body":"done"}`, status: 200, appends: true,
			check: func(t *testing.T, r reply) {
				if r.json["body"] != "done" {
					t.Errorf("edit comment: %s", r.raw)
				}
			}},
		{name: "delete comment", who: writer, method: "DELETE", path: "/tickets/1/comments/1", status: 200, appends: true,
			check: func(t *testing.T, r reply) {
				if r.json["deleted"] != true {
					t.Errorf("delete: %s", r.raw)
				}
			}},
		{name: "edit", who: writer, method: "PATCH", path: "/tickets/1", body: `{"title":"Build fixed","body":"","labels":"ci","version":6}`, status: 200, appends: true,
			check: func(t *testing.T, r reply) {
				if dig(r.json, "ticket", "title") != "Build fixed" {
					t.Errorf("edit: %s", r.raw)
				}
			}},
		{name: "unwatch (a form's answer, as JSON)", who: writer, method: "POST", path: "/tickets/1/unwatch", status: 200, appends: true,
			check: func(t *testing.T, r reply) {
				if r.json["ok"] != true || r.json["location"] != "/tickets/1" {
					t.Errorf("unwatch: %s", r.raw)
				}
			}},
		{name: "stale version", who: writer, method: "PATCH", path: "/tickets/1", body: `{"title":"again","body":"","labels":"","version":1}`, status: 409},
		{name: "idempotent first", who: writer, method: "POST", path: "/tickets", body: `{"title":"Once"}`, hdr: []string{"Idempotency-Key", key},
			status: 201, location: "/tickets/2", appends: true},
		{name: "idempotent again", who: writer, method: "POST", path: "/tickets", body: `{"title":"Once"}`, hdr: []string{"Idempotency-Key", key},
			status: 201, location: "/tickets/2", check: func(t *testing.T, r reply) {
				if dig(r.json, "ticket", "title") != "Once" {
					t.Errorf("repeat: %s", r.raw)
				}
			}},
		{name: "same key other command", who: writer, method: "POST", path: "/tickets", body: `{"title":"Twice"}`, hdr: []string{"Idempotency-Key", key}, status: 409},
		{name: "bad key", who: writer, method: "POST", path: "/tickets", body: `{"title":"x"}`, hdr: []string{"Idempotency-Key", "nope"}, status: 422},
		{name: "bad JSON", who: writer, method: "POST", path: "/tickets", body: `{"title":`, status: 400},
		{name: "not an object", who: writer, method: "POST", path: "/tickets", body: `["title"]`, status: 400},
		{name: "unknown field", who: writer, method: "POST", path: "/tickets", body: `{"titel":"x"}`, status: 422, check: func(t *testing.T, r reply) {
			if dig(r.json, "error", "fields", "titel") == nil {
				t.Errorf("want the field named: %s", r.raw)
			}
		}},
		{name: "wrong kind", who: writer, method: "POST", path: "/tickets", body: `{"title":{"a":1}}`, status: 422},
		{name: "invalid title", who: writer, method: "POST", path: "/tickets", body: `{"title":""}`, status: 422, check: func(t *testing.T, r reply) {
			if dig(r.json, "error", "fields", "title") == nil {
				t.Errorf("want the message beside title: %s", r.raw)
			}
		}},
		{name: "oversize", who: writer, method: "POST", path: "/tickets", body: `{"title":"` + strings.Repeat("x", 1<<20) + `"}`, status: 413},
		{name: "unknown ticket", who: writer, method: "POST", path: "/tickets/99/close", status: 404},
		{name: "read scope writes", who: reader, method: "POST", path: "/tickets", body: `{"title":"x"}`, status: 403},
		{name: "read scope reads", who: reader, method: "GET", path: "/tickets/1", status: 200, check: func(t *testing.T, r reply) {
			if dig(r.json, "ticket", "title") != "Build fixed" {
				t.Errorf("read: %s", r.raw)
			}
		}},
		{name: "admin scope invites", who: admin, method: "POST", path: "/admin/invitations", body: `{"role":"member","expires_in":24,"note":"for bob"}`,
			status: 201, appends: true, check: func(t *testing.T, r reply) {
				if l, _ := r.json["link"].(string); !strings.HasPrefix(l, srv.URL+"/join/") {
					t.Errorf("invitation: %s", r.raw)
				}
			}},
		{name: "admin scope writes tickets", who: admin, method: "POST", path: "/tickets", body: `{"title":"x"}`, status: 403},
		{name: "write scope admin", who: writer, method: "POST", path: "/projects", body: `{"slug":"ops","name":"Ops"}`, status: 403},
		{name: "token makes a token", who: writer, method: "POST", path: "/account/tokens", body: `{"name":"x"}`, status: 403},
		{name: "revoked", who: revoked, method: "GET", path: "/tickets", status: 401},
		{name: "revoked writes", who: revoked, method: "POST", path: "/tickets", body: `{"title":"x"}`, status: 401},
		{name: "garbage token", who: script{t, srv.URL, "brd_nope"}, method: "GET", path: "/tickets", status: 401},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before := countEvents(t, srv.DB)
			r := s.who.do(s.method, s.path, s.body, s.hdr...)
			if r.status != s.status {
				t.Fatalf("got %d, want %d\n%.1000s", r.status, s.status, r.raw)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
			if r.location != s.location {
				t.Errorf("Location %q, want %q", r.location, s.location)
			}
			if s.status >= 400 {
				if code, _ := dig(r.json, "error", "code").(float64); int(code) != s.status || dig(r.json, "error", "message") == "" {
					t.Errorf("want the error shape with code %d: %s", s.status, r.raw)
				}
			}
			if s.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if s.check != nil {
				s.check(t, r)
			}
			if got := countEvents(t, srv.DB) - before; (got > 0) != s.appends {
				t.Errorf("appended %d events, want appends=%v", got, s.appends)
			}
		})
	}
	verifyDB(t, srv.DB)
	if strings.Contains(srv.Log.String(), "brd_") {
		t.Errorf("a token reached the server's log")
	}
	if db := dbDump(t, srv.DB); strings.Contains(db, writer.token[4:]) {
		t.Errorf("a token's secret is stored in the database")
	}
}

// dbDump reads every event's payload and every token row, for looking
// for secrets.
func dbDump(tb testing.TB, path string) string {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var out string
	if err := db.QueryRow(`SELECT (SELECT group_concat(` + payloadData + `, ' ') FROM events) || (SELECT group_concat(id || name || scopes, ' ') FROM tokens)`).Scan(&out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestTokenCookieNeverFallsBack: a browser with a session that also sends
// a bad token is refused, not served as the cookie's person; a good token
// needs no CSRF token even beside a cookie.
func TestTokenCookieNeverFallsBack(t *testing.T) {
	srv := startServer(t)
	b := newBrowser(t, srv.URL)
	b.register("alice")
	tok := makeToken(t, b, "alice", "ci", "read", "write")
	if a := b.do("GET", "/tickets", nil, "Authorization", "Bearer brd_"+strings.Repeat("A", 43)); a.status != 401 {
		t.Fatalf("bad token beside a cookie: got %d, want 401", a.status)
	}
	a := b.do("POST", "/tickets", url.Values{"title": {"form with token"}}, "Authorization", "Bearer "+tok)
	if a.status != http.StatusCreated || !strings.Contains(a.body, `"form with token"`) {
		t.Fatalf("form body with a token: got %d\n%s", a.status, a.body)
	}
}

// TestTokenRateLimit: a token's 601st request within the window is 429
// with Retry-After, and another token is unaffected.
func TestTokenRateLimit(t *testing.T) {
	srv := startServer(t)
	b := newBrowser(t, srv.URL)
	b.register("alice")
	s := script{t, srv.URL, makeToken(t, b, "alice", "busy", "read")}
	other := script{t, srv.URL, makeToken(t, b, "alice", "quiet", "read")}
	n := 0
	for ; n < 700; n++ {
		r := s.do("GET", "/tickets/new", "")
		if r.status == http.StatusTooManyRequests {
			if r.header.Get("Retry-After") == "" || dig(r.json, "error", "code") != 429.0 {
				t.Fatalf("429 without Retry-After or JSON: %v %s", r.header, r.raw)
			}
			break
		}
		if r.status != 200 {
			t.Fatalf("request %d: %d %s", n, r.status, r.raw)
		}
	}
	if n < 600 || n > 610 { // one more each second of the test: 600 per 10 minutes
		t.Fatalf("refused after %d requests, want about 600", n)
	}
	if r := other.do("GET", "/tickets/new", ""); r.status != 200 {
		t.Fatalf("another token: got %d", r.status)
	}
}
