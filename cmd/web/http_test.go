package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"braid/internal/events"
)

// browser is an HTTP client with its own cookies, like one person's browser.
type browser struct {
	tb   testing.TB
	base string
	c    *http.Client
}

func newBrowser(tb testing.TB, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{tb: tb, base: base, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (b *browser) do(method, path string, form url.Values, hdr ...string) answer {
	b.tb.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.tb.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.tb.Fatal(err)
	}
	defer res.Body.Close()
	bs, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, location: res.Header.Get("Location"), body: string(bs), header: res.Header}
}

func (b *browser) get(path string) answer { return b.do("GET", path, nil) }

var (
	formRE     = regexp.MustCompile(`(?s)<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	inputRE    = regexp.MustCompile(`<input[^>]*>`)
	nameRE     = regexp.MustCompile(`name="([^"]*)"`)
	valueRE    = regexp.MustCompile(`value="([^"]*)"`)
	textareaRE = regexp.MustCompile(`(?s)<textarea[^>]*name="([^"]*)"[^>]*>(.*?)</textarea>`)
)

// form draws the page at path and returns the fields of the form whose
// action is action (or the first form that is not sign-out), as a browser
// would send them, with fields set over them.
func (b *browser) form(path, action string, fields url.Values) url.Values {
	b.tb.Helper()
	page := b.get(path)
	if page.status != http.StatusOK {
		b.tb.Fatalf("GET %s: got %d, want 200", path, page.status)
	}
	v := url.Values{}
	found := false
	for _, m := range formRE.FindAllStringSubmatch(page.body, -1) {
		if (action != "" && m[1] != action) || (action == "" && m[1] == "/logout") {
			continue
		}
		found = true
		for _, in := range inputRE.FindAllString(m[2], -1) {
			n, val := nameRE.FindStringSubmatch(in), valueRE.FindStringSubmatch(in)
			if n != nil && val != nil {
				v.Set(n[1], html.UnescapeString(val[1]))
			}
		}
		for _, ta := range textareaRE.FindAllStringSubmatch(m[2], -1) {
			v.Set(ta[1], html.UnescapeString(ta[2]))
		}
		break
	}
	if !found {
		b.tb.Fatalf("GET %s: no form with action %q", path, action)
	}
	for k, vals := range fields {
		v[k] = vals
	}
	return v
}

func (b *browser) post(path string, v url.Values) answer { return b.do("POST", path, v) }

func (b *browser) register(user string) {
	b.tb.Helper()
	a := b.post("/register", b.form("/register", "", url.Values{"username": {user}, "display_name": {strings.ToUpper(user[:1]) + user[1:]},
		"password": {"correct horse"}, "password_confirmation": {"correct horse"}}))
	if a.status != http.StatusSeeOther {
		b.tb.Fatalf("register %s: got %d, want 303\n%s", user, a.status, a.body)
	}
}

func (b *browser) open(title string) string {
	b.tb.Helper()
	a := b.post("/tickets", b.form("/tickets/new", "", url.Values{"title": {title}, "body": {"steps:\n1. open\n2. see"}, "labels": {"bug, ui"}}))
	if a.status != http.StatusSeeOther {
		b.tb.Fatalf("open ticket: got %d, want 303\n%s", a.status, a.body)
	}
	return a.location
}

func countEvents(tb testing.TB, path string) int {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func verifyDB(tb testing.TB, path string) events.Report {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	r, err := events.Verify(context.Background(), db)
	if err != nil {
		tb.Fatal(err)
	}
	if !r.Intact {
		tb.Fatalf("braid broken: %+v", r.Failure)
	}
	return r
}

func TestHTTPContract(t *testing.T) {
	s := startServer(t)
	ada, bob, anon := newBrowser(t, s.URL), newBrowser(t, s.URL), newBrowser(t, s.URL)
	ada.register("ada")
	bob.register("bob")
	ticket := ada.open("<script>alert('x')</script> login fails")
	if ticket != "/tickets/1" {
		t.Fatalf("first ticket at %q, want /tickets/1", ticket)
	}
	comment := func(b *browser, body string) answer {
		return b.post(ticket+"/comments", b.form(ticket, ticket+"/comments", url.Values{"body": {body}}))
	}
	if a := comment(bob, "I see it too"); a.status != http.StatusSeeOther || a.location != ticket {
		t.Fatalf("bob comments: got %d to %q, want 303 to %s", a.status, a.location, ticket)
	}

	// Each case: what is sent, the status and body expected, and whether
	// anything may be appended.
	type tcase struct {
		name       string
		send       func() answer
		wantStatus int
		wantBody   string
		appends    int
	}
	var dup url.Values
	cases := []tcase{
		{"title escaped", func() answer { return ada.get(ticket) }, 200, "&lt;script&gt;alert(", 0},
		{"line breaks kept (as Markdown: a numbered list)", func() answer { return ada.get(ticket) }, 200, "steps:</p>\n<ol>\n<li>open</li>", 0},
		{"invalid title 422, input kept", func() answer {
			return ada.post("/tickets", ada.form("/tickets/new", "", url.Values{"title": {""}, "body": {"keep me"}}))
		}, 422, "keep me", 0},
		{"title too long 422", func() answer {
			return ada.post("/tickets", ada.form("/tickets/new", "", url.Values{"title": {strings.Repeat("x", 201)}}))
		}, 422, "Keep the title to 200 characters", 0},
		{"too many labels 422", func() answer {
			return ada.post("/tickets", ada.form("/tickets/new", "", url.Values{"title": {"t"}, "labels": {"a,b,c,d,e,f,g,h,i,j,k"}}))
		}, 422, "At most 10 labels", 0},
		{"empty comment 422", func() answer { return comment(ada, "   ") }, 422, "A comment cannot be empty", 0},
		{"CSRF missing 403", func() answer {
			v := ada.form(ticket, ticket+"/comments", url.Values{"body": {"sneaky"}})
			v.Del("_csrf")
			return ada.post(ticket+"/comments", v)
		}, 403, "security token", 0},
		{"CSRF wrong 403", func() answer {
			v := ada.form(ticket, ticket+"/comments", url.Values{"body": {"sneaky"}})
			v.Set("_csrf", "forged")
			return ada.post(ticket+"/comments", v)
		}, 403, "", 0},
		{"CSRF header accepted", func() answer {
			v := ada.form(ticket, ticket+"/comments", url.Values{"body": {"by header"}})
			tok := v.Get("_csrf")
			v.Del("_csrf")
			return ada.do("POST", ticket+"/comments", v, "X-CSRF-Token", tok)
		}, 303, "", 1},
		{"someone else's comment: edit form 403", func() answer { return ada.get(ticket + "/comments/1/edit") }, 403, "Only bob", 0},
		{"someone else's comment: PATCH 403", func() answer {
			v := ada.form(ticket, "", url.Values{"body": {"hijack"}, "_method": {"PATCH"}})
			return ada.post(ticket+"/comments/1", v)
		}, 403, "Only bob", 0},
		{"someone else's comment: DELETE 403", func() answer {
			v := ada.form(ticket, "", url.Values{"_method": {"DELETE"}})
			return ada.post(ticket+"/comments/1", v)
		}, 403, "Only bob", 0},
		{"own comment: edit 303", func() answer {
			return bob.post(ticket+"/comments/1", bob.form(ticket+"/comments/1/edit", "", url.Values{"body": {"I see it too, on Firefox"}, "_method": {"PATCH"}}))
		}, 303, "", 1},
		{"unknown ticket 404", func() answer { return ada.get("/tickets/999") }, 404, "no ticket #999", 0},
		{"non-numeric ticket 404", func() answer { return ada.get("/tickets/abc") }, 404, "", 0},
		{"unknown comment 404", func() answer { return ada.get(ticket + "/comments/42/edit") }, 404, "", 0},
		{"unknown event 404", func() answer { return ada.get("/events/9999") }, 404, "", 0},
		{"unknown path 404, a page", func() answer { return ada.get("/no/such/page") }, 404, "Not found", 0},
		{"unknown path 404, JSON", func() answer { return ada.do("GET", "/no/such/page", nil, "Accept", "application/json") }, 404, `"code":404`, 0},
		{"assign unknown user 422", func() answer {
			return ada.post(ticket+"/assign", ada.form(ticket, ticket+"/assign", url.Values{"assignee": {"nobody"}}))
		}, 422, "no user called", 0},
		{"assign bob 303", func() answer {
			return ada.post(ticket+"/assign", ada.form(ticket, ticket+"/assign", url.Values{"assignee": {"bob"}}))
		}, 303, "", 1},
		{"stale edit 409 with their change", func() answer {
			stale := ada.form(ticket+"/edit", "", url.Values{"title": {"ada's title"}})
			if a := bob.post(ticket, bob.form(ticket+"/edit", "", url.Values{"title": {"bob's title"}, "_method": {"PATCH"}})); a.status != 303 {
				t.Fatalf("bob's edit: got %d, want 303", a.status)
			}
			stale.Set("_method", "PATCH")
			return ada.post(ticket, stale)
		}, 409, "bob&#39;s title", 1},
		{"double-posted command_id appends once", func() answer {
			dup = ada.form(ticket, ticket+"/comments", url.Values{"body": {"only once"}})
			ada.post(ticket+"/comments", dup)
			return ada.post(ticket+"/comments", dup)
		}, 303, "", 1},
		{"close 303", func() answer { return ada.post(ticket+"/close", ada.form(ticket, ticket+"/close", nil)) }, 303, "", 1},
		{"close again 409", func() answer {
			v := ada.form(ticket, ticket+"/reopen", nil)
			v.Set("command_id", events.NewID())
			return ada.post(ticket+"/close", v)
		}, 409, "already closed", 0},
		{"reopen 303", func() answer { return ada.post(ticket+"/reopen", ada.form(ticket, ticket+"/reopen", nil)) }, 303, "", 1},
		{"signed out post goes to /login", func() answer {
			return anon.post(ticket+"/comments", url.Values{"body": {"anonymous"}})
		}, 303, "", 0},
		{"signed out page goes to /login", func() answer { return anon.get("/tickets") }, 303, "", 0},
		{"healthz is public", func() answer { return anon.get("/healthz") }, 200, "ok", 0},
		{"verify is public", func() answer { return anon.get("/verify") }, 200, "Verify the braid", 0},
		{"a body over 1 MB 413", func() answer {
			return ada.post(ticket+"/comments", ada.form(ticket, ticket+"/comments", url.Values{"body": {strings.Repeat("x", 1<<20+1)}}))
		}, 413, "", 0},
		{"comment over 10,000 characters 422, kept", func() answer {
			return ada.post(ticket+"/comments", ada.form(ticket, ticket+"/comments", url.Values{"body": {strings.Repeat("é", 10001)}}))
		}, 422, "Keep a comment to 10000 characters", 0},
		{"JSON ticket", func() answer { return ada.do("GET", ticket, nil, "Accept", "application/json") }, 200, `"comments":[`, 0},
		{"JSON list", func() answer {
			return ada.do("GET", "/tickets?status=all&label=bug", nil, "Accept", "application/json")
		}, 200, `"total":1`, 0},
		{"JSON feed", func() answer { return ada.do("GET", "/events", nil, "Accept", "application/json") }, 200, `"event_type":"ticket_reopened"`, 0},
		{"JSON event", func() answer { return ada.do("GET", "/events/1", nil, "Accept", "application/json") }, 200, `"event_type":"user_registered"`, 0},
		{"JSON new-ticket form", func() answer { return ada.do("GET", "/tickets/new", nil, "Accept", "application/json") }, 200, `"command_id":"`, 0},
		{"JSON edit form with version", func() answer { return ada.do("GET", ticket+"/edit", nil, "Accept", "application/json") }, 200, `"version":"`, 0},
		{"JSON login form", func() answer { return anon.do("GET", "/login", nil, "Accept", "application/json") }, 200, `"csrf":"`, 0},
		{"history lists events", func() answer { return ada.get(ticket + "/history") }, 200, "ticket_assigned", 0},
		{"time travel by position", func() answer { return ada.get(ticket + "?at=4") }, 200, "as it stood at log position", 0},
		{"time travel by time, now", func() answer { return ada.get(ticket + "?as_of=2999-01-01T00:00:00Z") }, 200, "(as of 2999-01-01T00:00:00Z)", 0},
		{"time travel before the log began 404", func() answer { return ada.get(ticket + "?as_of=2000-01-01T00:00:00Z") }, 404, "no events yet", 0},
		{"time travel to a bad time 422", func() answer { return ada.get(ticket + "?as_of=yesterday") }, 422, "RFC 3339", 0},
		{"time travel before the ticket 404", func() answer { return ada.get(ticket + "?at=1") }, 404, "did not exist at position 1", 0},
		{"JSON history", func() answer { return ada.do("GET", ticket+"/history", nil, "Accept", "application/json") }, 200, `"changes":[`, 0},
		{"bad status filter 422", func() answer { return ada.get("/tickets?status=maybe") }, 422, "open, closed or all", 0},
		{"search finds", func() answer { return ada.get("/tickets?status=all&q=steps") }, 200, "title</a>", 0},
		{"search with FTS syntax does not break", func() answer { return ada.get(`/tickets?status=all&q=%22AND+(NEAR`) }, 200, "No tickets match", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := countEvents(t, s.DB)
			a := tc.send()
			if a.status != tc.wantStatus {
				t.Fatalf("got status %d, want %d\n%s", a.status, tc.wantStatus, a.body)
			}
			if tc.wantBody != "" && !strings.Contains(a.body, tc.wantBody) {
				t.Fatalf("body lacks %q:\n%s", tc.wantBody, a.body)
			}
			if got := countEvents(t, s.DB) - before; got != tc.appends {
				t.Fatalf("appended %d events, want %d", got, tc.appends)
			}
		})
	}
	if a := anon.post(ticket+"/comments", url.Values{"body": {"x"}}); a.location != "/login" {
		t.Fatalf("signed-out post redirected to %q, want /login", a.location)
	}

	// JSON bodies parse and say what the page says.
	var got struct {
		Ticket struct {
			Title, Status, Assignee string
			AssigneeUsername        string `json:"assignee_username"`
			Comments                []struct{ Body string }
		}
	}
	if err := json.Unmarshal([]byte(ada.do("GET", ticket, nil, "Accept", "application/json").body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Ticket.Title != "bob's title" || got.Ticket.Status != "open" || got.Ticket.Assignee != idOf(t, s.DB, "bob") || got.Ticket.AssigneeUsername != "bob" || len(got.Ticket.Comments) != 3 {
		t.Fatalf("JSON ticket: got %+v", got.Ticket)
	}

	// Deleting one's own comment: gone from the page, kept in the log and history.
	// A real DELETE (not a form) carries its token in the header.
	if a := bob.do("DELETE", ticket+"/comments/1", nil, "X-CSRF-Token", bob.form(ticket, "", nil).Get("_csrf")); a.status != 303 {
		t.Fatalf("bob deletes own comment: got %d, want 303", a.status)
	}
	if page := bob.get(ticket).body; strings.Contains(page, "on Firefox") {
		t.Fatalf("deleted comment still on the page")
	}
	if h := bob.get(ticket + "/history").body; !strings.Contains(h, "comment_deleted") || !strings.Contains(h, "(deleted)") {
		t.Fatalf("history does not say the comment was deleted")
	}

	// Sign-out kills the session on the server: the old cookie is useless.
	cookies := ada.c.Jar.Cookies(mustURL(t, s.URL))
	if a := ada.post("/logout", ada.form("/tickets", "/logout", nil)); a.status != 303 || a.location != "/login" {
		t.Fatalf("logout: got %d to %q", a.status, a.location)
	}
	replayer := newBrowser(t, s.URL)
	replayer.c.Jar.SetCookies(mustURL(t, s.URL), cookies)
	if a := replayer.get("/tickets"); a.status != 303 {
		t.Fatalf("old session cookie after sign-out: got %d, want 303 to /login", a.status)
	}

	r := verifyDB(t, s.DB)
	if r.Events != int64(countEvents(t, s.DB)) {
		t.Fatalf("verified %d events, log has %d", r.Events, countEvents(t, s.DB))
	}
}

func mustURL(tb testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func TestRegistrationAndSignIn(t *testing.T) {
	s := startServer(t, "--secure-cookies")
	b := newBrowser(t, s.URL)
	cases := []struct {
		name       string
		fields     url.Values
		wantStatus int
		wantBody   string
	}{
		{"bad username", url.Values{"username": {"A!"}, "password": {"correct horse"}, "password_confirmation": {"correct horse"}}, 422, "3 to 32 characters"},
		{"short password", url.Values{"username": {"carol"}, "password": {"short"}, "password_confirmation": {"short"}}, 422, "at least 8"},
		{"password over 72 bytes", url.Values{"username": {"carol"}, "password": {strings.Repeat("é", 40)}, "password_confirmation": {strings.Repeat("é", 40)}}, 422, "72 bytes"},
		{"confirmation differs", url.Values{"username": {"carol"}, "password": {"correct horse"}, "password_confirmation": {"correct horsf"}}, 422, "differ"},
		{"ok", url.Values{"username": {"carol"}, "display_name": {"Carol"}, "password": {"correct horse"}, "password_confirmation": {"correct horse"}}, 303, ""},
		{"taken", url.Values{"username": {"carol"}, "password": {"correct horse"}, "password_confirmation": {"correct horse"}}, 422, "taken"},
	}
	for _, tc := range cases {
		before := countEvents(t, s.DB)
		nb := newBrowser(t, s.URL)
		a := nb.post("/register", nb.form("/register", "", tc.fields))
		if a.status != tc.wantStatus || !strings.Contains(a.body, tc.wantBody) {
			t.Fatalf("%s: got %d %q, want %d with %q", tc.name, a.status, a.body, tc.wantStatus, tc.wantBody)
		}
		want := 0
		if tc.wantStatus == 303 {
			want = 2 // carol is the first person: user_registered and role_granted admin
		}
		if got := countEvents(t, s.DB) - before; got != want {
			t.Fatalf("%s: appended %d, want %d", tc.name, got, want)
		}
		if tc.wantStatus == 422 && tc.fields.Get("username") == "carol" && !strings.Contains(a.body, `value="carol"`) {
			t.Fatalf("%s: the username was not kept in the form", tc.name)
		}
	}
	// The password is nowhere in the log.
	db, _ := sql.Open("sqlite", s.DB)
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM events WHERE ` + payloadData + ` LIKE '%correct horse%'`).Scan(&n)
	db.Close()
	if n != 0 {
		t.Fatalf("the password is in the log")
	}

	// Sign in returns to where the person was going, but only on this site.
	for next, want := range map[string]string{"/tickets/new": "/tickets/new", "//evil.example/x": "/tickets", "https://evil.example": "/tickets"} {
		nb := newBrowser(t, s.URL)
		path := "/login?next=" + url.QueryEscape(next)
		if a := nb.post(path, nb.form(path, "", url.Values{"username": {"carol"}, "password": {"correct horse"}})); a.status != 303 || a.location != want {
			t.Fatalf("login with next=%q: got %d to %q, want 303 to %q", next, a.status, a.location, want)
		}
	}

	// Sign in: cookie flags, wrong password, rate limit.
	a := b.post("/login", b.form("/login", "", url.Values{"username": {"carol"}, "password": {"correct horse"}}))
	if a.status != 303 {
		t.Fatalf("login: got %d, want 303", a.status)
	}
	var session string
	for _, c := range a.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "braid_session=") {
			session = c
		}
	}
	for _, flag := range []string{"HttpOnly", "SameSite=Lax", "Secure"} {
		if !strings.Contains(session, flag) {
			t.Fatalf("session cookie %q lacks %s", session, flag)
		}
	}
	for i := 0; i < 5; i++ {
		a = b.post("/login", b.form("/login", "", url.Values{"username": {"carol"}, "password": {"wrong password"}}))
		if a.status != 422 || !strings.Contains(a.body, "Wrong username or password") {
			t.Fatalf("wrong password %d: got %d", i, a.status)
		}
	}
	a = b.post("/login", b.form("/login", "", url.Values{"username": {"carol"}, "password": {"correct horse"}}))
	if a.status != http.StatusTooManyRequests || !strings.Contains(a.body, "Too many failed sign-ins") {
		t.Fatalf("after 5 failures: got %d, want 429 with a message", a.status)
	}
}
