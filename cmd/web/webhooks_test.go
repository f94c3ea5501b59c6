package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// receiver is a webhook receiver on 127.0.0.1 that verifies every
// message with its own reading of the Standard Webhooks spec.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	delay  time.Duration // before answering a message it takes
	fail   int           // answer 500 to this many attempts, then 200 (-1: always)
	tries  []time.Time
	got    []hookMsg // messages taken (2xx), in arrival order
	bad    []string  // signature problems
}

type hookMsg struct {
	id       string
	position int64
	typ      string
}

func newReceiver(t *testing.T, fail int) *receiver {
	r := &receiver{t: t, fail: fail}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// verify checks a message as the spec says a receiver should: the HMAC
// of id.timestamp.body under the secret's decoded bytes, compared in
// constant time with each v1 signature, and a timestamp near now.
func verifyHook(secret string, h http.Header, body []byte) string {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return "secret: " + err.Error()
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(n, 0)).Abs() > 5*time.Minute {
		return "timestamp " + ts
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	want := m.Sum(nil)
	for _, s := range strings.Fields(h.Get("webhook-signature")) {
		v, sig, _ := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(sig)
		if v == "v1" && err == nil && hmac.Equal(got, want) {
			return ""
		}
	}
	return "signature does not match: " + h.Get("webhook-signature")
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries = append(r.tries, time.Now())
	if r.fail != 0 {
		if r.fail > 0 {
			r.fail--
		}
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if r.delay > 0 {
		r.mu.Unlock()
		time.Sleep(r.delay)
		r.mu.Lock()
	}
	if p := verifyHook(r.secret, req.Header, body); p != "" {
		r.bad = append(r.bad, p)
	}
	var e struct {
		Position int64  `json:"position"`
		Type     string `json:"event_type"`
	}
	json.Unmarshal(body, &e)
	r.got = append(r.got, hookMsg{id: req.Header.Get("webhook-id"), position: e.Position, typ: e.Type})
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) set(fn func(r *receiver)) { r.mu.Lock(); defer r.mu.Unlock(); fn(r) }

func (r *receiver) snapshot() ([]hookMsg, []string, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookMsg(nil), r.got...), append([]string(nil), r.bad...), append([]time.Time(nil), r.tries...)
}

// waitFor polls cond for up to 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

var secretRE = regexp.MustCompile(`whsec_[A-Za-z0-9+/=]+`)
var hookIDRE = regexp.MustCompile(`/p/main/webhooks/(w_[0-9a-f]{16})`)

// createHook makes a webhook on the main project as b and returns its id
// and secret.
func createHook(t *testing.T, b *browser, target, types string) (string, string) {
	t.Helper()
	r := b.post("/p/main/webhooks", b.form("/p/main/webhooks", "/p/main/webhooks", url.Values{"url": {target}, "events": {types}}))
	if r.status != http.StatusCreated {
		t.Fatalf("create webhook: got %d, want 201\n%.1500s", r.status, r.body)
	}
	id, secret := hookIDRE.FindStringSubmatch(r.body), secretRE.FindString(r.body)
	if id == nil || secret == "" {
		t.Fatalf("no id or secret on the page:\n%.1500s", r.body)
	}
	return id[1], secret
}

// ticketEvents lists the positions of the events of tickets in the log.
func ticketEvents(t *testing.T, db string) []int64 {
	t.Helper()
	d, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rows, err := d.Query(`SELECT position FROM events WHERE aggregate_type = 'ticket' ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var p int64
		rows.Scan(&p)
		out = append(out, p)
	}
	return out
}

var fastHooks = []string{"--webhook-allow-private", "--webhook-poll", "20ms", "--webhook-retry", "100ms", "--webhook-retry-max", "400ms"}

func TestWebhookDeliversInOrderSignedWithRetries(t *testing.T) {
	s := startServer(t, fastHooks...)
	rc := newReceiver(t, 3)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	id, secret := createHook(t, ada, rc.srv.URL+"/hook", "ticket_opened, comment_added, ticket_closed")
	rc.set(func(r *receiver) { r.secret = secret })
	for i := 0; i < 3; i++ {
		ada.open("webhook " + strconv.Itoa(i))
	}
	want := ticketEvents(t, s.DB)
	waitFor(t, "every ticket event", func() bool { got, _, _ := rc.snapshot(); return len(got) >= len(want) })
	got, bad, tries := rc.snapshot()
	if len(bad) > 0 {
		t.Fatalf("bad signatures: %v", bad)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want exactly %d: %v", len(got), len(want), got)
	}
	for i, m := range got {
		if m.position != want[i] || m.id != "msg_"+id+"_"+strconv.FormatInt(want[i], 10) || m.typ != "ticket_opened" {
			t.Fatalf("message %d: got %+v, want position %d in order", i, m, want[i])
		}
	}
	// Three 500s, then the first success: waits of 100, 200, 400 ms.
	if len(tries) < 4 {
		t.Fatalf("got %d attempts, want at least 4", len(tries))
	}
	for i, min := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		if gap := tries[i+1].Sub(tries[i]); gap < min {
			t.Errorf("wait before attempt %d: got %s, want at least %s (backoff)", i+2, gap, min)
		}
	}
	page := ada.get("/p/main/webhooks/" + id)
	if page.status != http.StatusOK || !strings.Contains(page.body, "the receiver answered 500") || !strings.Contains(page.body, "delivered") {
		t.Fatalf("delivery log: got %d\n%.2000s", page.status, page.body)
	}

	// Redeliver the first event: the same webhook-id arrives again.
	before := countEvents(t, s.DB)
	r := ada.post("/p/main/webhooks/"+id+"/redeliver", url.Values{"_csrf": {csrfOf(t, page.body)}, "position": {strconv.FormatInt(want[0], 10)}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("redeliver: got %d, want 303\n%.1000s", r.status, r.body)
	}
	waitFor(t, "the redelivery", func() bool { got, _, _ := rc.snapshot(); return len(got) == len(want)+1 })
	got, _, _ = rc.snapshot()
	if last := got[len(got)-1]; last.id != got[0].id {
		t.Fatalf("redelivered: got %+v, want %s again", last, got[0].id)
	}
	if n := countEvents(t, s.DB); n != before {
		t.Fatalf("redeliver appended %d events, want none", n-before)
	}
	// A position never sent to it is refused.
	if r := ada.post("/p/main/webhooks/"+id+"/redeliver", url.Values{"_csrf": {csrfOf(t, page.body)}, "position": {"1"}}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("redeliver an event never sent: got %d, want 422", r.status)
	}
}

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token on the page")
	}
	return m[1]
}

// startServerOn is startServer on a given database file, to restart it.
func startServerOn(t *testing.T, db string, extra ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	args := append([]string{"serve", "--db", db, "--addr", "127.0.0.1:0", "--registration", "open"}, extra...)
	go func() {
		done <- run(ctx, args, func(string) string { return "" }, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("server did not start: %v (exit %d)", err, <-done)
	}
	go io.Copy(io.Discard, pr)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return strings.TrimSpace(line[strings.Index(line, "http://"):]), stop
}

// TestWebhookServeHelper is the real program in a child process for
// TestWebhookResumesAfterKill (which SIGKILLs it).
func TestWebhookServeHelper(t *testing.T) {
	args := strings.Fields(os.Getenv("BRAID_WEBHOOK_HELPER"))
	if len(args) == 0 {
		t.Skip("only run by TestWebhookResumesAfterKill")
	}
	os.Exit(run(context.Background(), args, func(string) string { return "" }, os.Stdin, os.Stdout, os.Stderr))
}

// TestWebhookResumesAfterKill SIGKILLs the server in the middle of its
// deliveries to a receiver that failed its first three attempts, starts it
// again on the same file and finds every ticket event delivered at least
// once, in order, with at most the one in flight delivered twice (the
// checkpoint held).
func TestWebhookResumesAfterKill(t *testing.T) {
	db := filepath.Join(t.TempDir(), "braid.db")
	rc := newReceiver(t, 3)
	rc.delay = 40 * time.Millisecond
	cmd := exec.Command(os.Args[0], "-test.run=^TestWebhookServeHelper$")
	cmd.Env = append(os.Environ(), "BRAID_WEBHOOK_HELPER=serve --db "+db+" --addr 127.0.0.1:0 --registration open "+strings.Join(fastHooks, " "))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("server did not start: %v", err)
	}
	base := strings.TrimSpace(line[strings.Index(line, "http://"):])
	ada := newBrowser(t, base)
	ada.register("ada")
	_, secret := createHook(t, ada, rc.srv.URL, "")
	rc.set(func(r *receiver) { r.secret = secret })
	for i := 0; i < 4; i++ {
		path := ada.open("ticket " + strconv.Itoa(i))
		ada.post(path+"/comments", ada.form(path, path+"/comments", url.Values{"body": {"a comment"}}))
		ada.post(path+"/close", ada.form(path, path+"/close", nil))
	}
	want := ticketEvents(t, db)
	if len(want) != 12 {
		t.Fatalf("got %d ticket events, want 12", len(want))
	}
	waitFor(t, "two deliveries", func() bool { got, _, _ := rc.snapshot(); return len(got) >= 2 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	before, _, _ := rc.snapshot()
	if len(before) >= len(want) {
		t.Fatalf("every event was delivered before the kill (%d): nothing left to resume", len(before))
	}
	startServerOn(t, db, fastHooks...)
	waitFor(t, "every event after the restart", func() bool {
		got, _, _ := rc.snapshot()
		seen := map[int64]bool{}
		for _, m := range got {
			seen[m.position] = true
		}
		for _, p := range want {
			if !seen[p] {
				return false
			}
		}
		return true
	})
	got, bad, _ := rc.snapshot()
	if len(bad) > 0 {
		t.Fatalf("bad signatures: %v", bad)
	}
	var first []int64
	seen := map[int64]bool{}
	dups := 0
	for _, m := range got {
		if seen[m.position] {
			dups++
			continue
		}
		seen[m.position] = true
		first = append(first, m.position)
	}
	if !slices.Equal(first, want) {
		t.Fatalf("first deliveries: got %v, want %v (in order, no gap)", first, want)
	}
	if dups > 1 {
		t.Fatalf("got %d duplicates, want at most the one in flight at the kill: the checkpoint was lost", dups)
	}
}

func TestWebhookRefusals(t *testing.T) {
	s := startServer(t) // private addresses refused
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	mia := newBrowser(t, s.URL).from("127.0.0.40")
	mia.register("mia") // a member of main (everyone is)
	before := countEvents(t, s.DB)
	for _, c := range []struct{ url, want string }{
		{"http://127.0.0.1:9/hook", "private or loopback"},
		{"http://10.1.2.3/hook", "private or loopback"},
		{"http://[::1]/hook", "private or loopback"},
		{"http://localhost/hook", "private or loopback"},
		{"ftp://example.org/", "http:// or https://"},
		{"https://user:pw@example.org/", "no user name"},
	} {
		r := ada.post("/p/main/webhooks", ada.form("/p/main/webhooks", "/p/main/webhooks", url.Values{"url": {c.url}}))
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, c.want) {
			t.Errorf("create %s: got %d, want 422 with %q\n%.600s", c.url, r.status, c.want, r.body)
		}
	}
	if r := ada.post("/p/main/webhooks", ada.form("/p/main/webhooks", "/p/main/webhooks", url.Values{"url": {"https://example.org/"}, "events": {"no_such_event"}})); r.status != http.StatusUnprocessableEntity {
		t.Errorf("unknown event type: got %d, want 422", r.status)
	}
	if r := mia.get("/p/main/webhooks"); r.status != http.StatusForbidden {
		t.Errorf("member GET webhooks: got %d, want 403", r.status)
	}
	page := mia.get("/tickets/new")
	if r := mia.post("/p/main/webhooks", url.Values{"_csrf": {csrfOf(t, page.body)}, "url": {"https://example.org/"}}); r.status != http.StatusForbidden {
		t.Errorf("member POST webhooks: got %d, want 403", r.status)
	}
	if n := countEvents(t, s.DB); n != before {
		t.Fatalf("refusals appended %d events, want none", n-before)
	}
}

func TestWebhookTurnedOffAfterFailing(t *testing.T) {
	s := startServer(t, append(fastHooks, "--webhook-disable-after", "500ms")...)
	rc := newReceiver(t, -1)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	id, _ := createHook(t, ada, rc.srv.URL, "")
	ada.open("never taken")
	waitFor(t, "the webhook turned off", func() bool {
		return strings.Contains(ada.get("/p/main/webhooks/"+id).body, "Off (failing)")
	})
	inbox := ada.get("/inbox")
	if !strings.Contains(inbox.body, "was turned off") || !strings.Contains(inbox.body, "/p/main/webhooks/"+id) {
		t.Fatalf("inbox: want the notice\n%.3000s", inbox.body)
	}
	_, _, tries := rc.snapshot()
	time.Sleep(300 * time.Millisecond)
	if _, _, later := rc.snapshot(); len(later) != len(tries) {
		t.Fatalf("attempts went on after the webhook was turned off: %d then %d", len(tries), len(later))
	}
}
