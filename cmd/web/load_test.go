package main

import (
	"database/sql"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"braid/internal/events"
)

// loadClient is one signed-in person with their own cookies, sharing the
// benchmark's connection pool. Unlike browser it returns errors, so it can
// run on any goroutine.
type loadClient struct {
	base string
	c    *http.Client
	csrf string
}

var csrfRE = regexp.MustCompile(`name="_csrf"[^>]*value="([^"]*)"`)

func newLoadClient(base string, tr *http.Transport) *loadClient {
	jar, _ := cookiejar.New(nil)
	return &loadClient{base: base, c: &http.Client{Transport: tr, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// post sends a form with the client's CSRF token and a fresh command id and
// returns the status and Location.
func (lc *loadClient) post(path string, v url.Values) (int, string, error) {
	v.Set("_csrf", lc.csrf)
	v.Set("command_id", events.NewID())
	res, err := lc.c.PostForm(lc.base+path, v)
	if err != nil {
		return 0, "", err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Location"), nil
}

// token draws the form at path, which sets the CSRF cookie, and keeps its
// token for every later post.
func (lc *loadClient) token(path string) error {
	res, err := lc.c.Get(lc.base + path)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfRE.FindSubmatch(body)
	if m == nil {
		return fmt.Errorf("GET %s: status %d, no _csrf field", path, res.StatusCode)
	}
	lc.csrf = html.UnescapeString(string(m[1]))
	return nil
}

// signUp draws the registration form (which sets the CSRF cookie) and
// registers, which signs in and rotates the CSRF secret; then it draws a
// form again for the token kept for every later post.
func (lc *loadClient) signUp(user string) error {
	if err := lc.token("/register"); err != nil {
		return err
	}
	st, _, err := lc.post("/register", url.Values{"username": {user}, "password": {"correct horse"}, "password_confirmation": {"correct horse"}})
	if err != nil {
		return err
	}
	if st != http.StatusSeeOther {
		return fmt.Errorf("register %s: got %d, want 303", user, st)
	}
	return lc.token("/tickets/new")
}

// BenchmarkHTTPComments measures comment POSTs against the real program:
// 64 signed-in clients, 100 tickets, b.N comments in all, each a full
// request through CSRF, session, writer and projections, answered 303.
func BenchmarkHTTPComments(b *testing.B) {
	const clients, nTickets = 64, 100
	s := startServer(b)
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()

	// Registration is bcrypt-bound on purpose; do it in parallel, outside
	// the timed part.
	cs := make([]*loadClient, clients)
	errc := make(chan error, clients)
	// Each registers from its own loopback address: registration is
	// limited per address.
	for i := range cs {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i+1))}}
		cs[i] = newLoadClient(s.URL, &http.Transport{DialContext: d.DialContext})
		go func() { errc <- cs[i].signUp(fmt.Sprintf("load%02d", i)) }()
	}
	for range cs {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range cs {
		c.c.Transport.(*http.Transport).CloseIdleConnections()
		c.c.Transport = tr
	}
	for i := range nTickets {
		st, loc, err := cs[i%clients].post("/tickets", url.Values{"title": {fmt.Sprintf("load ticket %d", i+1)}, "body": {"under load"}, "labels": {"load"}})
		if err != nil {
			b.Fatal(err)
		}
		if want := "/tickets/" + strconv.Itoa(i+1); st != http.StatusSeeOther || loc != want {
			b.Fatalf("open ticket %d: got %d to %q, want 303 to %s", i+1, st, loc, want)
		}
	}

	var next atomic.Int64
	var failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lc := cs[w]
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				path := "/tickets/" + strconv.FormatInt(1+i%nTickets, 10) + "/comments"
				t0 := time.Now()
				st, _, err := lc.post(path, url.Values{"body": {fmt.Sprintf("comment %d from client %d: <b>ok</b> ✓", i, w)}})
				lat[w] = append(lat[w], time.Since(t0))
				if err == nil && st != http.StatusSeeOther {
					err = fmt.Errorf("POST %s: got %d, want 303", path, st)
				}
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d comment posts failed; first: %v", n, b.N, firstErr)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	q := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commands/s")
	b.ReportMetric(q(0.50), "p50_ms")
	b.ReportMetric(q(0.99), "p99_ms")

	if got, want := countEvents(b, s.DB), clients+nTickets+b.N; got != want {
		b.Fatalf("the log has %d events, want %d (users, tickets, comments)", got, want)
	}
	verifyDB(b, s.DB)
}

// TestSessionsSavedWhenChanged checks the session middleware: a session is
// written when sign-in, a flash or sign-out changes it, and not again on
// every page view just to push its idle deadline back.
func TestSessionsSavedWhenChanged(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t, s.URL)
	b.register("ada")
	if page := b.get("/tickets").body; !strings.Contains(page, "Welcome") { // pops the welcome flash: a change
		t.Fatalf("the welcome flash after sign-up is missing")
	}
	sessions := func() (rows int, expiry string) {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+s.DB+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.QueryRow(`SELECT COUNT(*), COALESCE(group_concat(expiry), '') FROM sessions`).Scan(&rows, &expiry); err != nil {
			t.Fatal(err)
		}
		return rows, expiry
	}
	n, first := sessions()
	if n != 1 {
		t.Fatalf("signed in: got %d sessions stored, want 1", n)
	}
	for range 5 {
		if a := b.get("/tickets"); a.status != http.StatusOK {
			t.Fatalf("GET /tickets signed in: got %d, want 200", a.status)
		}
	}
	if _, now := sessions(); now != first {
		t.Fatalf("page views rewrote the session: expiry got %s, want %s unchanged", now, first)
	}
	// A flash is a change: saved, shown once, then gone.
	loc := b.open("flash me")
	if page := b.get(loc).body; !strings.Contains(page, "opened.") {
		t.Fatalf("the flash after opening a ticket is missing")
	}
	if page := b.get(loc).body; strings.Contains(page, "opened.") {
		t.Fatalf("the flash was shown twice: its removal was not saved")
	}
	if a := b.post("/logout", b.form("/tickets", "/logout", nil)); a.status != http.StatusSeeOther {
		t.Fatalf("logout: got %d, want 303", a.status)
	}
	if n, _ := sessions(); n != 0 {
		t.Fatalf("after sign-out: got %d sessions stored, want 0", n)
	}
}
