package main

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"braid/internal/events"
)

// TestRedTeam replays the outside review's findings (issue "hardening")
// against a real server: each row is what an attacker or a careless client
// sends, the status that must come back, and how many events may be
// appended (none, for every refusal). Each finding also has its own focused
// test beside the code that fixes it; this table keeps them all in one
// place so a regression in any of them shows here too.
func TestRedTeam(t *testing.T) {
	s := startServer(t)
	alice, bob, mallory, anon := newBrowser(t, s.URL), newBrowser(t, s.URL), newBrowser(t, s.URL), newBrowser(t, s.URL)
	alice.register("alice")
	bob.register("bob")
	ticket := alice.open("printer on fire")

	// Mallory registers with a command id of her choosing; Alice comments
	// with one anyone can read in the feed afterwards.
	mcid := events.NewID()
	if a := mallory.post("/register", mallory.form("/register", "", url.Values{"username": {"mallory"}, "password": {"mallory's password"},
		"password_confirmation": {"mallory's password"}, "command_id": {mcid}})); a.status != http.StatusSeeOther {
		t.Fatalf("mallory registers: got %d, want 303\n%s", a.status, a.body)
	}
	acid := events.NewID()
	if a := alice.post(ticket+"/comments", alice.form(ticket, ticket+"/comments", url.Values{"body": {"smoke"}, "command_id": {acid}})); a.status != http.StatusSeeOther {
		t.Fatalf("alice comments: got %d, want 303", a.status)
	}

	raw := func(b *browser, method, path, ctype string, body io.Reader, length int64, hdr ...string) answer {
		t.Helper()
		req, err := http.NewRequest(method, s.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = length
		req.Header.Set("Content-Type", ctype)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := b.c.Do(req)
		if err != nil {
			// The server may close the connection once it has answered 413.
			return answer{status: -1, body: err.Error()}
		}
		defer res.Body.Close()
		bs, _ := io.ReadAll(res.Body)
		return answer{status: res.StatusCode, location: res.Header.Get("Location"), body: string(bs), header: res.Header}
	}

	type row struct {
		name       string
		send       func() answer
		wantStatus int
		check      func(t *testing.T, a answer)
	}
	rows := []row{
		// Critical 1: a command id is never a capability.
		{"register alice with mallory's command id: refused, not signed in", func() answer {
			eve := newBrowser(t, s.URL)
			a := eve.post("/register", eve.form("/register", "", url.Values{"username": {"alice"}, "password": {"anything at all"},
				"password_confirmation": {"anything at all"}, "command_id": {mcid}}))
			if who := eve.get("/tickets"); who.status != http.StatusSeeOther {
				t.Errorf("after the refused registration the session reached /tickets (%d): signed in as someone", who.status)
			}
			return a
		}, http.StatusConflict, nil},
		{"register a new name with a used command id: refused, no welcome", func() answer {
			eve := newBrowser(t, s.URL)
			return eve.post("/register", eve.form("/register", "", url.Values{"username": {"eve"}, "password": {"eve's password"},
				"password_confirmation": {"eve's password"}, "command_id": {acid}}))
		}, http.StatusConflict, func(t *testing.T, a answer) {
			if strings.Contains(a.body, "Welcome") {
				t.Errorf("a refused registration says Welcome")
			}
		}},
		{"mallory repeats her own registration with a wrong password: not signed in", func() answer {
			eve := newBrowser(t, s.URL)
			a := eve.post("/register", eve.form("/register", "", url.Values{"username": {"mallory"}, "password": {"not her password"},
				"password_confirmation": {"not her password"}, "command_id": {mcid}}))
			if who := eve.get("/tickets"); who.status != http.StatusSeeOther {
				t.Errorf("a repeated registration with the wrong password signed in (%d)", who.status)
			}
			return a
		}, http.StatusConflict, nil},
		{"bob comments with alice's command id", func() answer {
			return bob.post(ticket+"/comments", bob.form(ticket, ticket+"/comments", url.Values{"body": {"mine"}, "command_id": {acid}}))
		}, http.StatusConflict, nil},
		{"alice repeats her comment: one event, 303", func() answer {
			return alice.post(ticket+"/comments", alice.form(ticket, ticket+"/comments", url.Values{"body": {"smoke"}, "command_id": {acid}}))
		}, http.StatusSeeOther, nil},
		{"alice reuses her comment's id for another text", func() answer {
			return alice.post(ticket+"/comments", alice.form(ticket, ticket+"/comments", url.Values{"body": {"fire"}, "command_id": {acid}}))
		}, http.StatusConflict, nil},

		// Critical 2: every field that reaches the log is checked first.
		{"command_id %FF", func() answer {
			return bob.post(ticket+"/comments", bob.form(ticket, ticket+"/comments", url.Values{"body": {"x"}, "command_id": {"\xff"}}))
		}, http.StatusUnprocessableEntity, nil},
		{"command_id not 32 hex", func() answer {
			return bob.post("/tickets", bob.form("/tickets/new", "", url.Values{"title": {"x"}, "command_id": {"my-own-id"}}))
		}, http.StatusUnprocessableEntity, nil},
		{"title not UTF-8", func() answer {
			return bob.post("/tickets", bob.form("/tickets/new", "", url.Values{"title": {"bad \xff byte"}}))
		}, http.StatusUnprocessableEntity, nil},
		{"comment with NUL", func() answer {
			return bob.post(ticket+"/comments", bob.form(ticket, ticket+"/comments", url.Values{"body": {"nul \x00 here"}}))
		}, http.StatusUnprocessableEntity, nil},
		{"label with a control character", func() answer {
			return bob.post("/tickets", bob.form("/tickets/new", "", url.Values{"title": {"t"}, "labels": {"ok, b\x07ell"}}))
		}, http.StatusUnprocessableEntity, nil},
		{"display name with an escape sequence", func() answer {
			eve := newBrowser(t, s.URL)
			return eve.post("/register", eve.form("/register", "", url.Values{"username": {"eve2"}, "display_name": {"\x1b[31mred"},
				"password": {"eve's password"}, "password_confirmation": {"eve's password"}}))
		}, http.StatusUnprocessableEntity, nil},

		// Critical 3: the body limit holds before anything reads the body.
		{"chunked 3 MB form", func() answer {
			v := bob.form("/tickets/new", "", url.Values{"title": {"big"}, "body": {strings.Repeat("x", 3<<20)}})
			return raw(bob, "POST", "/tickets", "application/x-www-form-urlencoded", io.MultiReader(strings.NewReader(v.Encode())), -1)
		}, http.StatusRequestEntityTooLarge, nil},
		{"40 MB multipart to /login, announced", func() answer {
			return raw(anon, "POST", "/login", "multipart/form-data; boundary=x", bytes.NewReader(make([]byte, 40<<20)), 40<<20)
		}, http.StatusRequestEntityTooLarge, nil},
		{"40 MB multipart to /login, chunked", func() answer {
			return raw(anon, "POST", "/login", "multipart/form-data; boundary=x", io.MultiReader(bytes.NewReader(make([]byte, 40<<20))), -1)
		}, http.StatusRequestEntityTooLarge, nil},

		// Low.
		{"search for NUL", func() answer { return bob.get("/tickets?q=%00") }, http.StatusOK, nil},
		{"search for FTS5 syntax", func() answer { return bob.get("/tickets?q=%22%2A%28NEAR%5E") }, http.StatusOK, nil},
		{"a position past the head", func() answer { return bob.get(ticket + "?at=9223372036854775807") }, http.StatusNotFound, nil},
		{"a page past any offset", func() answer { return bob.get("/tickets?page=737869762948382065") }, http.StatusOK, nil},
		{"next with a tab to another origin", func() answer {
			// Sent raw: a client that cannot parse the answer's Location
			// (a tab in it) must fail this row, not the whole table.
			eve := newBrowser(t, s.URL)
			v := eve.form("/login?next=/%09/evil.example/", "", url.Values{"username": {"bob"}, "password": {"correct horse"}})
			return raw(eve, "POST", "/login?next=/%09/evil.example/", "application/x-www-form-urlencoded", strings.NewReader(v.Encode()), int64(len(v.Encode())))
		}, http.StatusSeeOther, func(t *testing.T, a answer) {
			if a.location != "/tickets" {
				t.Errorf("signed in and sent to %q, want /tickets", a.location)
			}
		}},
		{"CSRF token in the query string", func() answer {
			v := bob.form(ticket, ticket+"/comments", url.Values{"body": {"via query"}})
			tok := v.Get("_csrf")
			v.Del("_csrf")
			return bob.post(ticket+"/comments?_csrf="+url.QueryEscape(tok), v)
		}, http.StatusForbidden, nil},
		{"HEAD /healthz, as uptime checkers ask", func() answer { return raw(anon, "HEAD", "/healthz", "", nil, 0) }, http.StatusOK, nil},
		{"static directory listing", func() answer { return anon.get("/static/") }, http.StatusNotFound, nil},
		{"signed-in pages are not cached", func() answer { return bob.get(ticket) }, http.StatusOK, func(t *testing.T, a answer) {
			if cc := a.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
		}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			before := countEvents(t, s.DB)
			a := r.send()
			if a.status != r.wantStatus {
				t.Errorf("got status %d, want %d\n%.600s", a.status, r.wantStatus, a.body)
			}
			if a.status >= 500 {
				t.Errorf("a 5xx answer: %d", a.status)
			}
			if r.check != nil {
				r.check(t, a)
			}
			if got := countEvents(t, s.DB) - before; got != 0 {
				t.Errorf("appended %d events, want 0", got)
			}
		})
	}
	verifyDB(t, s.DB)
	if code, _, stderr := runWeb(t, "export", "--db", s.DB); code != 0 {
		t.Fatalf("export after the red team: exit %d: %s", code, stderr)
	}
}
