package main

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// signIn signs b in as user with password.
func (b *browser) signIn(user, password string) answer {
	b.tb.Helper()
	return b.post("/login", b.form("/login", "", url.Values{"username": {user}, "password": {password}}))
}

func wantStatus(tb testing.TB, what string, a answer, want int) {
	tb.Helper()
	if a.status != want {
		tb.Fatalf("%s: got %d, want %d\n%s", what, a.status, want, a.body)
	}
}

func eventsOfType(tb testing.TB, path, typ string) (n int, actor, data string) {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT COUNT(*), COALESCE(MAX(actor), ''), COALESCE(MAX(`+payloadData+`), '') FROM events WHERE event_type = ?`, typ).Scan(&n, &actor, &data); err != nil {
		tb.Fatal(err)
	}
	return n, actor, data
}

// Display names are shown wherever a person is named, the username in
// small type beside them, each linking to the profile; everyday pages
// speak to people (no event types, no versions), history keeps them.
func TestNamesOnPages(t *testing.T) {
	s := startServer(t)
	alice := newBrowser(t, s.URL)
	alice.post("/register", alice.form("/register", "", url.Values{"username": {"alice"}, "display_name": {"Alice Liddell"},
		"password": {"correct horse"}, "password_confirmation": {"correct horse"}}))
	bob := newBrowser(t, s.URL).from("127.0.0.2")
	bob.register("bob") // display name "Bob"
	loc := alice.open("Printer on fire")
	wantStatus(t, "assign", alice.post(loc+"/assign", alice.form(loc, loc+"/assign", url.Values{"assignee": {"bob"}})), http.StatusSeeOther)
	wantStatus(t, "comment", bob.post(loc+"/comments", bob.form(loc, loc+"/comments", url.Values{"body": {"on it"}})), http.StatusSeeOther)

	alicePerson := `<a href="/people/alice">Alice Liddell</a> <small class="username">@alice</small>`
	bobPerson := `<a href="/people/bob">Bob</a> <small class="username">@bob</small>`
	page := bob.get(loc).body
	for _, want := range []string{alicePerson, bobPerson, `Signed in as</span> <a href="/people/bob"`, `<time datetime="`, `<option value="alice">Alice Liddell</option>`} {
		if !strings.Contains(page, want) {
			t.Errorf("ticket page lacks %q", want)
		}
	}
	for name, path := range map[string]string{"ticket page": loc, "list": "/tickets", "edit form": loc + "/edit"} {
		body := bob.get(path).body
		for _, not := range []string{"ticket_opened", "comment_added", "ticket_assigned", "version ", "position"} {
			if strings.Contains(body, not) {
				t.Errorf("the %s shows %q; it is for the history page", name, not)
			}
		}
	}
	if list := bob.get("/tickets").body; !strings.Contains(list, bobPerson) {
		t.Errorf("the list does not name the assignee Bob:\n%s", list)
	}
	hist := bob.get(loc + "/history").body
	for _, want := range []string{alicePerson, bobPerson, "ticket_opened", "comment_added"} {
		if !strings.Contains(hist, want) {
			t.Errorf("history lacks %q", want)
		}
	}
	if feed := bob.get("/events").body; !strings.Contains(feed, alicePerson) || !strings.Contains(feed, bobPerson) {
		t.Errorf("the feed does not name Alice and Bob")
	}
}

// A profile shows who someone is and what they did lately, in words,
// linking to the tickets; only one's own has the account forms.
func TestProfile(t *testing.T) {
	s := startServer(t)
	alice := newBrowser(t, s.URL)
	alice.register("alice")
	bob := newBrowser(t, s.URL).from("127.0.0.2")
	bob.register("bob")
	loc := alice.open("Printer on fire")
	alice.post(loc+"/comments", alice.form(loc, loc+"/comments", url.Values{"body": {"smoke too"}}))

	own := alice.get("/people/alice")
	wantStatus(t, "own profile", own, http.StatusOK)
	for _, want := range []string{"Registered", `commented on <a href="/tickets/1">#1 Printer on fire</a>`,
		`opened <a href="/tickets/1">#1 Printer on fire</a>`, "registered", `action="/account/password"`, `action="/account/name"`,
		"Sign out other sessions"} {
		if !strings.Contains(own.body, want) {
			t.Errorf("own profile lacks %q", want)
		}
	}
	other := bob.get("/people/alice")
	wantStatus(t, "alice's profile seen by bob", other, http.StatusOK)
	if strings.Contains(other.body, "/account/password") || !strings.Contains(other.body, "#1 Printer on fire") {
		t.Errorf("bob sees alice's account forms, or not her activity")
	}
	wantStatus(t, "unknown person", bob.get("/people/nobody"), http.StatusNotFound)
	if a := newBrowser(t, s.URL).get("/people/alice"); a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/login") {
		t.Errorf("signed out: got %d %s, want 303 to /login", a.status, a.location)
	}
}

// A display name change is an event (display_name_changed) checked by
// internal/input; the pages show the new name.
func TestChangeDisplayName(t *testing.T) {
	s := startServer(t)
	alice := newBrowser(t, s.URL)
	alice.register("alice")
	loc := alice.open("Printer on fire")
	before := countEvents(t, s.DB)
	for _, bad := range []string{"bell\x07", strings.Repeat("x", 65)} {
		a := alice.post("/account/name", alice.form("/people/alice", "/account/name", url.Values{"display_name": {bad}}))
		wantStatus(t, "bad name", a, http.StatusUnprocessableEntity)
		if !strings.Contains(a.body, `id="display_name-error"`) {
			t.Errorf("no message beside the field:\n%s", a.body)
		}
	}
	if n := countEvents(t, s.DB); n != before {
		t.Fatalf("refused renames appended: %d events, want %d", n, before)
	}
	wantStatus(t, "rename", alice.post("/account/name", alice.form("/people/alice", "/account/name", url.Values{"display_name": {"Alice Liddell"}})), http.StatusSeeOther)
	if n, actor, data := eventsOfType(t, s.DB, "display_name_changed"); n != 1 || actor != idOf(t, s.DB, "alice") || data != `{"display_name":"Alice Liddell"}` {
		t.Errorf("display_name_changed: got %d by %q %s, want 1 by alice", n, actor, data)
	}
	if page := alice.get(loc).body; !strings.Contains(page, `<a href="/people/alice">Alice Liddell</a>`) {
		t.Errorf("the ticket page does not show the new name")
	}
	verifyDB(t, s.DB)

	// web replay rebuilds the users projection with the new name.
	s.stop()
	db, err := sql.Open("sqlite", "file:"+s.DB+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, `UPDATE users SET display_name = 'stale'`)
	if code := run(context.Background(), []string{"replay", "--db", s.DB}, func(string) string { return "" }, strings.NewReader(""), io.Discard, io.Discard); code != 0 {
		t.Fatalf("replay: exit %d", code)
	}
	var name string
	if err := db.QueryRow(`SELECT display_name FROM users WHERE username = 'alice'`).Scan(&name); err != nil || name != "Alice Liddell" {
		t.Errorf("after replay: display name %q (%v), want Alice Liddell", name, err)
	}
}

// Changing the password: the current one is checked (a wrong one is 422,
// appends nothing and counts against the sign-in limit); on success the
// old password stops working, password_changed is in the log with no
// secret, every other session is signed out and this one goes on.
func TestChangePassword(t *testing.T) {
	s := startServer(t)
	one := newBrowser(t, s.URL)
	one.register("alice")
	two := newBrowser(t, s.URL).from("127.0.0.2")
	wantStatus(t, "second browser signs in", two.signIn("alice", "correct horse"), http.StatusSeeOther)
	wantStatus(t, "second browser", two.get("/tickets"), http.StatusOK)

	change := func(current, next, again string) answer {
		return one.post("/account/password", one.form("/people/alice", "/account/password",
			url.Values{"current_password": {current}, "new_password": {next}, "new_password_confirmation": {again}}))
	}
	before := countEvents(t, s.DB)
	a := change("not my password", "battery staple", "battery staple")
	wantStatus(t, "wrong current password", a, http.StatusUnprocessableEntity)
	if !strings.Contains(a.body, `id="current_password-error"`) {
		t.Errorf("no message beside current_password")
	}
	wantStatus(t, "new passwords differ", change("correct horse", "battery staple", "battery stapler"), http.StatusUnprocessableEntity)
	wantStatus(t, "new password short", change("correct horse", "short", "short"), http.StatusUnprocessableEntity)
	if n := countEvents(t, s.DB); n != before {
		t.Fatalf("refused changes appended: %d events, want %d", n, before)
	}
	wantStatus(t, "change", change("correct horse", "battery staple", "battery staple"), http.StatusSeeOther)
	wantStatus(t, "this browser stays signed in", one.get("/tickets"), http.StatusOK)
	if a := two.get("/tickets"); a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/login") {
		t.Errorf("the other session after a password change: got %d %s, want 303 to /login", a.status, a.location)
	}
	n, actor, data := eventsOfType(t, s.DB, "password_changed")
	if n != 1 || actor != idOf(t, s.DB, "alice") || strings.Contains(data, "staple") || strings.Contains(data, "horse") || strings.Contains(data, "$2a$") {
		t.Errorf("password_changed: got %d by %q %s, want 1 by alice with no secret", n, actor, data)
	}
	three := newBrowser(t, s.URL).from("127.0.0.3")
	wantStatus(t, "old password", three.signIn("alice", "correct horse"), http.StatusUnprocessableEntity)
	wantStatus(t, "new password", three.signIn("alice", "battery staple"), http.StatusSeeOther)

	// Wrong current passwords count like wrong sign-ins: 5 per person and
	// address, and the one above was the first.
	for i := 0; i < 4; i++ {
		wantStatus(t, "guess", change("guess", "battery staple2", "battery staple2"), http.StatusUnprocessableEntity)
	}
	a = change("battery staple", "battery staple2", "battery staple2")
	wantStatus(t, "after 5 wrong current passwords", a, http.StatusTooManyRequests)
	if a.header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	verifyDB(t, s.DB)
}

// "Sign out other sessions" does only that: nothing in the log, this
// session goes on, the others are signed out.
func TestSignOutOtherSessions(t *testing.T) {
	s := startServer(t)
	one := newBrowser(t, s.URL)
	one.register("alice")
	two := newBrowser(t, s.URL).from("127.0.0.2")
	two.signIn("alice", "correct horse")
	bob := newBrowser(t, s.URL).from("127.0.0.3")
	bob.register("bob")
	before := countEvents(t, s.DB)
	wantStatus(t, "sign out others", one.post("/account/sessions", one.form("/people/alice", "/account/sessions", nil)), http.StatusSeeOther)
	if n := countEvents(t, s.DB); n != before {
		t.Errorf("signing out other sessions appended %d events", n-before)
	}
	wantStatus(t, "this session", one.get("/tickets"), http.StatusOK)
	wantStatus(t, "the other session", two.get("/tickets"), http.StatusSeeOther)
	wantStatus(t, "someone else's session", bob.get("/tickets"), http.StatusOK)
	wantStatus(t, "signing in again", two.signIn("alice", "correct horse"), http.StatusSeeOther)
	wantStatus(t, "signed in again", two.get("/tickets"), http.StatusOK)
}

func admin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"admin"}, args...), func(string) string { return "" }, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

var resetLinkRE = regexp.MustCompile(`^https://braid\.example/reset/([A-Za-z0-9_-]{43})\n$`)

// web admin: --help, list, and reset-password's one-time link, which works
// once, expires, signs out every session and appends password_reset
// (actor system) with no secret.
func TestAdminResetPassword(t *testing.T) {
	if code, out, _ := admin(t, "--help"); code != 0 || !strings.Contains(out, "reset-password") {
		t.Errorf("web admin --help: exit %d, %q", code, out)
	}
	s := startServer(t)
	alice := newBrowser(t, s.URL)
	alice.post("/register", alice.form("/register", "", url.Values{"username": {"alice"}, "display_name": {"Alice Liddell"},
		"password": {"correct horse"}, "password_confirmation": {"correct horse"}}))
	if code, out, errOut := admin(t, "list", "--db", s.DB); code != 0 || !regexp.MustCompile(`(?m)^alice\s+Alice Liddell\s+20`).MatchString(out) {
		t.Errorf("web admin list: exit %d, %q %s", code, out, errOut)
	}
	if code, _, _ := admin(t, "reset-password", "--db", s.DB, "nobody"); code != 1 {
		t.Errorf("reset-password for nobody: exit %d, want 1", code)
	}
	code, out, errOut := admin(t, "reset-password", "alice", "--db", s.DB, "--base-url", "https://braid.example/")
	m := resetLinkRE.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("reset-password: exit %d, %q %s", code, out, errOut)
	}
	link := "/reset/" + m[1]

	stranger := newBrowser(t, s.URL).from("127.0.0.2")
	wantStatus(t, "made-up link", stranger.get("/reset/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), http.StatusNotFound)
	page := stranger.get(link)
	wantStatus(t, "reset page", page, http.StatusOK)
	if !strings.Contains(page.body, "alice") {
		t.Errorf("the reset page does not say whose password it sets")
	}
	before := countEvents(t, s.DB)
	wantStatus(t, "too short", stranger.post(link, stranger.form(link, link, url.Values{"new_password": {"short"}, "new_password_confirmation": {"short"}})), http.StatusUnprocessableEntity)
	if n := countEvents(t, s.DB); n != before {
		t.Fatalf("a refused reset appended")
	}
	v := stranger.form(link, link, url.Values{"new_password": {"battery staple"}, "new_password_confirmation": {"battery staple"}})
	a := stranger.post(link, v)
	if a.status != http.StatusSeeOther || a.location != "/login" {
		t.Fatalf("reset: got %d %s, want 303 to /login\n%s", a.status, a.location, a.body)
	}
	wantStatus(t, "alice's session after the reset", alice.get("/tickets"), http.StatusSeeOther)
	wantStatus(t, "old password", stranger.signIn("alice", "correct horse"), http.StatusUnprocessableEntity)
	wantStatus(t, "new password", stranger.signIn("alice", "battery staple"), http.StatusSeeOther)
	n, actor, data := eventsOfType(t, s.DB, "password_reset")
	if n != 1 || actor != "system" || strings.Contains(data, m[1]) || strings.Contains(data, "staple") {
		t.Errorf("password_reset: got %d by %q %s, want 1 by system with no secret", n, actor, data)
	}
	// Once only: the page and the form both refuse it now.
	wantStatus(t, "used link", stranger.get(link), http.StatusNotFound)
	v.Set("command_id", "0123456789abcdef0123456789abcdef")
	v.Set("_csrf", stranger.form("/tickets/new", "", nil).Get("_csrf")) // rotated at sign-in
	wantStatus(t, "used link posted", stranger.post(link, v), http.StatusNotFound)

	if strings.Contains(s.Log.String(), m[1]) || !strings.Contains(s.Log.String(), `path=/reset/…`) {
		t.Errorf("the request log shows the reset token, or no reset request at all")
	}

	// Expired: a link whose hour has passed.
	_, out, _ = admin(t, "reset-password", "alice", "--db", s.DB, "--base-url", "https://braid.example")
	link2 := "/reset/" + resetLinkRE.FindStringSubmatch(out)[1]
	wantStatus(t, "fresh link", stranger.get(link2), http.StatusOK)
	db, err := sql.Open("sqlite", "file:"+s.DB+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `UPDATE password_resets SET expires_at = '2000-01-01T00:00:00Z' WHERE used_at IS NULL`)
	db.Close()
	wantStatus(t, "expired link", stranger.get(link2), http.StatusNotFound)
	before = countEvents(t, s.DB)
	wantStatus(t, "expired link posted", stranger.post(link2, v), http.StatusNotFound)
	if n := countEvents(t, s.DB); n != before {
		t.Errorf("an expired link appended")
	}
	verifyDB(t, s.DB)
}

// Deleting a comment asks first, on a page that works without
// JavaScript; only the author gets it.
func TestDeleteCommentConfirmation(t *testing.T) {
	s := startServer(t)
	alice := newBrowser(t, s.URL)
	alice.register("alice")
	bob := newBrowser(t, s.URL).from("127.0.0.2")
	bob.register("bob")
	loc := alice.open("Printer on fire")
	alice.post(loc+"/comments", alice.form(loc, loc+"/comments", url.Values{"body": {"smoke too"}}))
	if page := alice.get(loc).body; !strings.Contains(page, `href="`+loc+`/comments/1/delete"`) || strings.Contains(page, `value="DELETE"`) {
		t.Errorf("the ticket page should link to the confirmation, not delete at once")
	}
	wantStatus(t, "bob asks to delete alice's comment", bob.get(loc+"/comments/1/delete"), http.StatusForbidden)
	confirm := alice.get(loc + "/comments/1/delete")
	wantStatus(t, "confirmation", confirm, http.StatusOK)
	if !strings.Contains(confirm.body, "smoke too") || !strings.Contains(confirm.body, `value="DELETE"`) {
		t.Fatalf("the confirmation page shows no comment or no DELETE form:\n%s", confirm.body)
	}
	a := alice.post(loc+"/comments/1", alice.form(loc+"/comments/1/delete", loc+"/comments/1", nil))
	wantStatus(t, "delete", a, http.StatusSeeOther)
	if page := alice.get(loc).body; strings.Contains(page, "smoke too") {
		t.Errorf("the comment is still shown")
	}
}
