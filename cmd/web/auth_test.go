package main

import (
	"context"
	"database/sql"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// from makes b dial from the local address ip (any of 127/8 reaches a
// server on 127.0.0.1 on Linux), so one test can be two clients.
func (b *browser) from(ip string) *browser {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	b.c.Transport = &http.Transport{DialContext: d.DialContext}
	return b
}

// 30 parallel wrong sign-ins for one user from one address: exactly the
// limit (5) reach bcrypt and answer 422, the rest 429.
func TestSignInLimitHoldsUnderParallelAttempts(t *testing.T) {
	s := startServer(t)
	newBrowser(t, s.URL).register("carol")
	b := newBrowser(t, s.URL)
	v := b.form("/login", "", url.Values{"username": {"carol"}, "password": {"wrong password"}})
	const n = 30
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := b.c.PostForm(s.URL+"/login", v)
			if err != nil {
				statuses <- 0
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses <- res.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for st := range statuses {
		count[st]++
	}
	if count[422] != 5 || count[429] != n-5 {
		t.Fatalf("answers to %d parallel wrong sign-ins: got %v, want 5 × 422 and %d × 429", n, count, n-5)
	}
}

// Wrong passwords from one address slow that address down; the owner, with
// the right password from another, still gets in.
func TestSignInOwnerNotLockedOutFromAnotherAddress(t *testing.T) {
	s := startServer(t)
	newBrowser(t, s.URL).register("ada")
	attacker := newBrowser(t, s.URL).from("127.0.0.2")
	login := func(b *browser, password string) answer {
		return b.post("/login", b.form("/login", "", url.Values{"username": {"ada"}, "password": {password}}))
	}
	for i := 0; i < 5; i++ {
		if a := login(attacker, "guess"); a.status != 422 {
			t.Fatalf("wrong password %d from 127.0.0.2: got %d, want 422", i+1, a.status)
		}
	}
	// One attempt comes back 3 minutes (15 minutes / 5) after the first.
	a := login(attacker, "correct horse")
	if wait, _ := strconv.Atoi(a.header.Get("Retry-After")); a.status != 429 || !strings.Contains(a.body, "Too many failed sign-ins") || wait < 1 || wait > 180 {
		t.Fatalf("6th try from 127.0.0.2: got %d, Retry-After %q; want 429 with a message, Retry-After 1 to 180", a.status, a.header.Get("Retry-After"))
	}
	owner := newBrowser(t, s.URL).from("127.0.0.1")
	if a := login(owner, "correct horse"); a.status != 303 || a.location != "/tickets" {
		t.Fatalf("the owner from 127.0.0.1 after 5 failures elsewhere: got %d to %q, want 303 to /tickets", a.status, a.location)
	}
}

func TestCSRFToken(t *testing.T) {
	s := startServer(t)
	alice, bob := newBrowser(t, s.URL), newBrowser(t, s.URL)
	alice.register("alice")
	bob.register("bob")
	newTicket := func(b *browser, csrf string) url.Values {
		v := b.form("/tickets/new", "", url.Values{"title": {"planted"}})
		v.Set("_csrf", csrf)
		return v
	}
	cases := []struct {
		name       string
		send       func() answer
		wantStatus int
	}{
		{"token in the query string", func() answer {
			v := alice.form("/tickets/new", "", url.Values{"title": {"by query"}})
			tok := v.Get("_csrf")
			v.Del("_csrf")
			return alice.post("/tickets?_csrf="+url.QueryEscape(tok), v)
		}, 403},
		{"token from before sign-in, used after", func() answer {
			c := newBrowser(t, s.URL)
			v := c.form("/login", "", url.Values{"username": {"alice"}, "password": {"correct horse"}})
			if a := c.post("/login", v); a.status != 303 {
				t.Fatalf("sign in: got %d, want 303", a.status)
			}
			return c.post("/tickets", newTicket(c, v.Get("_csrf")))
		}, 403},
		{"token from before sign-out, used after", func() answer {
			c := newBrowser(t, s.URL)
			c.post("/login", c.form("/login", "", url.Values{"username": {"alice"}, "password": {"correct horse"}}))
			v := c.form("/tickets", "/logout", nil)
			if a := c.post("/logout", v); a.status != 303 {
				t.Fatalf("sign out: got %d, want 303", a.status)
			}
			return c.post("/login", url.Values{"_csrf": {v.Get("_csrf")}, "username": {"alice"}, "password": {"correct horse"}})
		}, 403},
		{"alice's token with bob's cookies", func() answer {
			return bob.post("/tickets", newTicket(bob, alice.form("/tickets/new", "", nil).Get("_csrf")))
		}, 403},
		{"alice's token from another browser of hers", func() answer {
			c := newBrowser(t, s.URL)
			c.post("/login", c.form("/login", "", url.Values{"username": {"alice"}, "password": {"correct horse"}}))
			return c.post("/tickets", newTicket(c, alice.form("/tickets/new", "", nil).Get("_csrf")))
		}, 403},
		{"cross-site request with a good token", func() answer {
			return alice.do("POST", "/tickets", alice.form("/tickets/new", "", url.Values{"title": {"cross"}}), "Sec-Fetch-Site", "cross-site")
		}, 403},
		{"same-origin request with a good token", func() answer {
			return alice.do("POST", "/tickets", alice.form("/tickets/new", "", url.Values{"title": {"same"}}), "Sec-Fetch-Site", "same-origin")
		}, 303},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := countEvents(t, s.DB)
			a := tc.send()
			if a.status != tc.wantStatus {
				t.Fatalf("got %d, want %d\n%s", a.status, tc.wantStatus, a.body)
			}
			if a.status == 403 && !strings.Contains(a.body, "security token was missing or out of date") {
				t.Fatalf("403 without the message:\n%s", a.body)
			}
			want := 0
			if tc.wantStatus == 303 {
				want = 1
			}
			if got := countEvents(t, s.DB) - before; got != want {
				t.Fatalf("appended %d events, want %d", got, want)
			}
		})
	}

	// Visitors who are not signed in get a token and no session row.
	before := countSessions(t, s.DB)
	for i := 0; i < 5; i++ {
		anon := newBrowser(t, s.URL)
		for _, p := range []string{"/login", "/register"} {
			if anon.form(p, "", nil).Get("_csrf") == "" {
				t.Fatalf("GET %s: no _csrf token", p)
			}
		}
		anon.get("/verify")
	}
	if after := countSessions(t, s.DB); after != before {
		t.Fatalf("anonymous page views wrote %d session rows, want 0", after-before)
	}
}

func countSessions(tb testing.TB, path string) int {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sessions`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// Registration is limited per address (10 an hour, counted before the
// password is hashed); another address may still register.
func TestRegistrationThrottle(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t, s.URL)
	for i := 0; i < 10; i++ {
		if a := b.post("/register", b.form("/register", "", url.Values{"username": {"dan"}, "password": {"short"}, "password_confirmation": {"short"}})); a.status != 422 {
			t.Fatalf("attempt %d: got %d, want 422", i+1, a.status)
		}
	}
	before := countEvents(t, s.DB)
	a := b.post("/register", b.form("/register", "", url.Values{"username": {"dan"}, "password": {"correct horse"}, "password_confirmation": {"correct horse"}}))
	if a.status != 429 || !strings.Contains(a.body, "Too many registrations from your address") || !strings.Contains(a.body, `value="dan"`) {
		t.Fatalf("11th attempt: got %d, want 429 with a message and the form kept\n%s", a.status, a.body)
	}
	if got := countEvents(t, s.DB) - before; got != 0 {
		t.Fatalf("a refused registration appended %d events", got)
	}
	newBrowser(t, s.URL).from("127.0.0.2").register("dan")
}

func TestRegistrationClosed(t *testing.T) {
	s := startServer(t, "--registration", "closed")
	b := newBrowser(t, s.URL)
	if a := b.get("/register"); a.status != 200 || !strings.Contains(a.body, "Registration is closed") || strings.Contains(a.body, `action="/register"`) {
		t.Fatalf("GET /register: got %d, want 200 saying registration is closed, with no form\n%s", a.status, a.body)
	}
	v := b.form("/login", "", url.Values{"username": {"eve"}, "display_name": {"Eve"}, "password": {"correct horse"}, "password_confirmation": {"correct horse"}})
	if a := b.post("/register", v); a.status != 403 || !strings.Contains(a.body, "Registration is closed") {
		t.Fatalf("POST /register: got %d, want 403 with a message\n%s", a.status, a.body)
	}
	if n := countEvents(t, s.DB); n != 0 {
		t.Fatalf("the log has %d events, want 0", n)
	}

	// Anything unknown stops the start, by flag or by environment.
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--registration", "maybe"}, "", "use open, invite or closed"},
		{nil, "maybe", "use open, invite or closed"},
	} {
		var errb strings.Builder
		args := append([]string{"serve", "--db", t.TempDir() + "/b.db", "--addr", "127.0.0.1:0"}, tc.args...)
		getenv := func(k string) string {
			if k == "BRAID_REGISTRATION" {
				return tc.env
			}
			return ""
		}
		if code := run(context.Background(), args, getenv, strings.NewReader(""), io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Fatalf("serve %v (BRAID_REGISTRATION=%q): exit %d, stderr %q; want 2 and %q", tc.args, tc.env, code, errb.String(), tc.want)
		}
	}
}
