package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"braid/internal/auth"
	"braid/internal/events"
	"braid/internal/web"
	"braid/static"
)

// registerWith posts the register form with the given fields over it.
func registerWith(b *browser, fields url.Values) answer {
	b.tb.Helper()
	return b.post("/register", b.form("/register", "", fields))
}

// A command_id is public (it is in /events and every export): sending one
// that was used before must never sign anyone in, report someone else's
// success or act on another person's behalf (issue 10, finding 1).
func TestUsedCommandIDIsNoCapability(t *testing.T) {
	s := startServer(t)
	alice, mallory := newBrowser(t, s.URL), newBrowser(t, s.URL)
	alice.register("alice")
	used := events.NewID()
	if a := registerWith(mallory, url.Values{"username": {"mallory"}, "display_name": {"Mallory"}, "password": {"mallory's pw"},
		"password_confirmation": {"mallory's pw"}, "command_id": {used}}); a.status != http.StatusSeeOther {
		t.Fatalf("mallory registers: got %d, want 303\n%s", a.status, a.body)
	}
	cases := []struct {
		name             string
		username, dname  string
		password         string
		wantStatus       int
		wantBody         string
		wantSignedInAsIf string // who the attacker's browser may be signed in as afterwards ("" nobody)
	}{
		{"existing user, any password", "alice", "", "anything at all", 409, "already used", ""},
		{"existing user, display name like mallory's", "alice", "Mallory", "anything at all", 409, "already used", ""},
		{"new username", "newbie", "", "newbie's pw", 409, "already used", ""},
		{"the same registration, wrong password", "mallory", "Mallory", "not mallory's", 409, "already registered", ""},
		{"the same registration, right password: a repeat", "mallory", "Mallory", "mallory's pw", 303, "", "mallory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			attacker := newBrowser(t, s.URL)
			before := countEvents(t, s.DB)
			a := registerWith(attacker, url.Values{"username": {tc.username}, "display_name": {tc.dname}, "password": {tc.password},
				"password_confirmation": {tc.password}, "command_id": {used}})
			if a.status != tc.wantStatus {
				t.Fatalf("got %d, want %d\n%s", a.status, tc.wantStatus, a.body)
			}
			if !strings.Contains(a.body, tc.wantBody) || strings.Contains(a.body, "Welcome") {
				t.Fatalf("body lacks %q or says Welcome:\n%s", tc.wantBody, a.body)
			}
			if tc.wantStatus != 303 && strings.Contains(a.body, "mallory") && tc.username != "mallory" {
				t.Fatalf("the refusal names whose command_id it was:\n%s", a.body)
			}
			if got := countEvents(t, s.DB) - before; got != 0 {
				t.Fatalf("appended %d events, want 0", got)
			}
			page := attacker.get("/tickets")
			switch {
			case tc.wantSignedInAsIf == "" && page.status != http.StatusSeeOther:
				t.Fatalf("GET /tickets after the refusal: got %d, want 303 to /login (signed in as nobody)\n%s", page.status, page.body)
			case tc.wantSignedInAsIf != "" && (page.status != 200 || !strings.Contains(page.body, tc.wantSignedInAsIf)):
				t.Fatalf("GET /tickets after a true repeat: got %d, want 200 signed in as %s", page.status, tc.wantSignedInAsIf)
			}
		})
	}
	// Alice still signs in with her own password, and only she.
	if a := newBrowser(t, s.URL).post("/login", url.Values{"username": {"alice"}, "password": {"anything at all"}}); a.status == http.StatusSeeOther {
		t.Fatal("alice's account took a new password")
	}
}

// Bob posting a comment with the command_id of Alice's comment is refused
// (409) and writes nothing; it is not reported as done.
func TestCommentWithAnothersCommandIDIsRefused(t *testing.T) {
	s := startServer(t)
	alice, bob := newBrowser(t, s.URL), newBrowser(t, s.URL)
	alice.register("alice")
	bob.register("bob")
	ticket := alice.open("printer on fire")
	v := alice.form(ticket, ticket+"/comments", url.Values{"body": {"alice's comment"}})
	if a := alice.post(ticket+"/comments", v); a.status != http.StatusSeeOther {
		t.Fatalf("alice comments: got %d, want 303", a.status)
	}
	cases := []struct {
		name string
		b    *browser
		body string
	}{
		{"another person, same text", bob, "alice's comment"},
		{"another person, other text", bob, "bob was here"},
		{"same person, other text", alice, "alice changed her mind"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := countEvents(t, s.DB)
			w := tc.b.form(ticket, ticket+"/comments", url.Values{"body": {tc.body}, "command_id": {v.Get("command_id")}})
			a := tc.b.post(ticket+"/comments", w)
			if a.status != http.StatusConflict || !strings.Contains(a.body, "already used for something else") {
				t.Fatalf("got %d, want 409 with the plain refusal\n%s", a.status, a.body)
			}
			if got := countEvents(t, s.DB) - before; got != 0 {
				t.Fatalf("appended %d events, want 0", got)
			}
		})
	}
	if page := alice.get(ticket).body; strings.Contains(page, "bob was here") || strings.Contains(page, "changed her mind") {
		t.Fatal("a refused comment shows on the ticket")
	}
}

// Every field that reaches the log is checked before the writer sees it:
// bytes that are not text, NUL and other control characters are refused
// with 422 and the message beside the field, nothing is appended, and the
// log still exports (issue 10, finding 2).
func TestFieldsThatAreNotTextAreRefused(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	ticket := ada.open("a ticket")
	if a := ada.post(ticket+"/comments", ada.form(ticket, ticket+"/comments", url.Values{"body": {"a comment"}})); a.status != 303 {
		t.Fatalf("comment: got %d", a.status)
	}
	type form struct {
		name, page, action, post string
		fields                   url.Values // valid values, one of which each case spoils
		anon                     bool
	}
	forms := []form{
		{"register", "/register", "", "/register", url.Values{"username": {"zed"}, "display_name": {"Zed"}, "password": {"correct horse"}, "password_confirmation": {"correct horse"}}, true},
		{"new ticket", "/tickets/new", "", "/tickets", url.Values{"title": {"title"}, "body": {"body"}, "labels": {"bug"}}, false},
		{"edit ticket", ticket + "/edit", "", ticket, url.Values{"title": {"new title"}, "body": {"new body"}, "labels": {"ui"}, "_method": {"PATCH"}}, false},
		{"comment", ticket, ticket + "/comments", ticket + "/comments", url.Values{"body": {"another"}}, false},
		{"edit comment", ticket + "/comments/1/edit", "", ticket + "/comments/1", url.Values{"body": {"edited"}, "_method": {"PATCH"}}, false},
		{"assign", ticket, ticket + "/assign", ticket + "/assign", url.Values{"assignee": {"ada"}}, false},
	}
	// Each anonymous visitor comes from its own loopback address, so the
	// per-address registration limit does not answer for the field checks.
	visitors := 0
	newVisitor := func() *browser {
		visitors++
		return newBrowser(t, s.URL).from(fmt.Sprintf("127.0.%d.%d", 10+visitors/250, 1+visitors%250))
	}
	bad := []struct{ name, v string }{{"%FF", "\xff"}, {"%00", "\x00"}, {"%01", "\x01"}, {"%7F", "\x7f"}, {"%C2%80", "\xc2\x80"}}
	for _, f := range forms {
		for field := range f.fields {
			if field == "_method" || strings.HasPrefix(field, "password") {
				continue // passwords never reach the log
			}
			for _, b := range bad {
				t.Run(f.name+"/"+field+"/"+b.name, func(t *testing.T) {
					br := ada
					if f.anon {
						br = newVisitor()
					}
					v := br.form(f.page, f.action, f.fields)
					v.Set(field, "ok"+b.v+"ok")
					before := countEvents(t, s.DB)
					a := br.post(f.post, v)
					if a.status != http.StatusUnprocessableEntity {
						t.Fatalf("got %d, want 422\n%s", a.status, a.body)
					}
					if !strings.Contains(a.body, `id="`+field+`-error"`) {
						t.Fatalf("no message beside %s:\n%s", field, a.body)
					}
					if got := countEvents(t, s.DB) - before; got != 0 {
						t.Fatalf("appended %d events, want 0", got)
					}
				})
			}
		}
	}
	// command_id has one format: 32 lowercase hex digits.
	for _, id := range []string{"\xff", "cmd-1", "0123456789ABCDEF0123456789ABCDEF", strings.Repeat("a", 33)} {
		for _, f := range forms {
			t.Run(f.name+"/command_id/"+url.QueryEscape(id), func(t *testing.T) {
				br := ada
				if f.anon {
					br = newVisitor()
				}
				v := br.form(f.page, f.action, f.fields)
				v.Set("command_id", id)
				before := countEvents(t, s.DB)
				a := br.post(f.post, v)
				if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, "command id is damaged") || !strings.Contains(a.body, "<form") {
					t.Fatalf("got %d, want 422 with the form and its message\n%s", a.status, a.body)
				}
				if got := countEvents(t, s.DB) - before; got != 0 {
					t.Fatalf("appended %d events, want 0", got)
				}
			})
		}
	}
	if code, out, errb := runWeb(t, "export", "--db", s.DB); code != 0 || !strings.Contains(out, `"event_type":"ticket_opened"`) {
		t.Fatalf("export: exit %d, stderr %q", code, errb)
	}
	verifyDB(t, s.DB)
}

// A full disk answers writes with 503 and what is wrong, /healthz says
// writes fail, and both recover once there is room again.
func TestDiskFullAnswers503(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "braid.db")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := openApp(ctx, path, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	env := &web.Env{DB: a.db, Writer: a.writer, Registry: a.reg, Sessions: auth.NewSessions(a.db, false), Assets: static.New(), Log: log}
	mon := web.NewMonitor(ctx, a.db.Read, anchorFunc(a.db, nil), log, 5*time.Second)
	hs := httptest.NewServer(newServer(env, a, mon, false, auth.RegistrationOpen, clientIP(nil, false)))
	defer hs.Close()

	ada := newBrowser(t, hs.URL)
	ada.register("ada")
	ticket := ada.open("a ticket")
	pageCap := func(n string) {
		t.Helper()
		if err := a.writer.Exclusive(ctx, func(ctx context.Context, q events.Querier) error {
			_, err := q.ExecContext(ctx, "PRAGMA max_page_count = "+n)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	comment := func() answer {
		return ada.post(ticket+"/comments", ada.form(ticket, ticket+"/comments", url.Values{"body": {strings.Repeat("long enough to need new pages ", 300)}}))
	}
	health := func() answer { return newBrowser(t, hs.URL).get("/healthz") }

	pageCap("1") // not a page more than the file has
	before := countEvents(t, path)
	if got := comment(); got.status != http.StatusServiceUnavailable || !strings.Contains(got.body, "The server cannot write: the disk is full. Nothing was saved.") {
		t.Fatalf("comment on a full disk: got %d, want 503 saying the disk is full\n%s", got.status, got.body)
	}
	if got := countEvents(t, path) - before; got != 0 {
		t.Fatalf("appended %d events on a full disk", got)
	}
	if got := health(); got.status != http.StatusServiceUnavailable || got.body != "writes failing: disk full\n" {
		t.Fatalf("/healthz on a full disk: got %d %q, want 503 \"writes failing: disk full\"", got.status, got.body)
	}
	pageCap("1073741823")
	if got := comment(); got.status != http.StatusSeeOther {
		t.Fatalf("comment after making room: got %d, want 303\n%s", got.status, got.body)
	}
	if got := health(); got.status != http.StatusOK {
		t.Fatalf("/healthz after making room: got %d %q, want 200", got.status, got.body)
	}
	verifyDB(t, path)
}
