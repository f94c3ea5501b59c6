package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"braid/static"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines to write
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServerLogging is startServer with the server's log (its stderr)
// written to log.
func startServerLogging(tb testing.TB, log io.Writer, extra ...string) *testServer {
	tb.Helper()
	db := filepath.Join(tb.TempDir(), "braid.db")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	args := append([]string{"serve", "--db", db, "--addr", "127.0.0.1:0", "--registration", "open"}, extra...)
	go func() {
		done <- run(ctx, args, func(string) string { return "" }, strings.NewReader(""), pw, log)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		tb.Fatalf("server did not start: %v (exit %d)", err, <-done)
	}
	go io.Copy(io.Discard, pr)
	s := &testServer{URL: strings.TrimSpace(line[strings.Index(line, "http://"):]), DB: db}
	var once sync.Once
	code := 0
	s.stop = func() int { once.Do(func() { cancel(); code = <-done }); return code } // a test may stop it before the cleanup does
	tb.Cleanup(func() { s.stop() })
	return s
}

// unsized hides a reader's length, so the client sends it chunked.
type unsized struct{ io.Reader }

// multipartBody is a multipart form of n bytes in one file part.
func multipartBody(n int) (io.Reader, string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		mw.WriteField("username", "ada")
		f, _ := mw.CreateFormFile("file", "big.bin")
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for left := n; left > 0; left -= len(chunk) {
			if _, err := f.Write(chunk[:min(left, len(chunk))]); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		mw.Close()
		pw.Close()
	}()
	return pr, mw.FormDataContentType()
}

// watchDir reports, once stopped, the names that appeared in dir meanwhile.
func watchDir(dir string) (stop func() []string) {
	var seen sync.Map
	var done atomic.Bool
	fin := make(chan struct{})
	go func() {
		defer close(fin)
		for !done.Load() {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				seen.Store(e.Name(), true)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() []string {
		done.Store(true)
		<-fin
		var names []string
		seen.Range(func(k, _ any) bool { names = append(names, k.(string)); return true })
		return names
	}
}

func TestBodyLimit(t *testing.T) {
	s := startServer(t)
	// Go's multipart reader spools big parts to os.TempDir, which reads
	// TMPDIR at each call: point it at a directory of our own now that the
	// server's database is elsewhere.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	before := countEvents(t, s.DB)

	send := func(method, path string, body io.Reader, size int64, ctype string) int {
		t.Helper()
		req, err := http.NewRequest(method, s.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = size
		req.Header.Set("Content-Type", ctype)
		res, err := ada.c.Do(req)
		if err != nil {
			// The server may close the connection once it has answered;
			// the client then reports the write error, not the answer.
			t.Logf("%s %s: %v", method, path, err)
			return 0
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}

	form := ada.form("/tickets/new", "", url.Values{"title": {"big"}, "body": {strings.Repeat("b", 3<<20)}}).Encode()
	csrf := ada.form("/login", "", nil).Get("_csrf")
	small, smallType := multipartBody(10)
	cases := []struct {
		name   string
		path   string
		body   io.Reader
		size   int64 // -1: chunked
		ctype  string
		want   int
		noTemp bool
	}{
		{"chunked 3 MB form", "/tickets", unsized{strings.NewReader(form)}, -1, "application/x-www-form-urlencoded", 413, false},
		{"3 MB form with its length", "/tickets", strings.NewReader(form), int64(len(form)), "application/x-www-form-urlencoded", 413, false},
		{"1 MiB + 1 chunked", "/login", unsized{strings.NewReader("_csrf=" + csrf + "&password=" + strings.Repeat("p", 1<<20))}, -1, "application/x-www-form-urlencoded", 413, false},
		{"small multipart refused", "/login", small, -1, smallType, 415, true},
	}
	for _, n := range []struct {
		name string
		size int64
	}{{"40 MB multipart chunked", -1}, {"40 MB multipart with its length", 0}} {
		body, ctype := multipartBody(40 << 20)
		size := n.size
		if size == 0 {
			b, _ := io.ReadAll(body)
			body, size = bytes.NewReader(b), int64(len(b))
		}
		cases = append(cases, struct {
			name   string
			path   string
			body   io.Reader
			size   int64
			ctype  string
			want   int
			noTemp bool
		}{n.name, "/login", body, size, ctype, 413, true})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stop := watchDir(tmp)
			got := send("POST", tc.path, tc.body, tc.size, tc.ctype)
			if seen := stop(); len(seen) > 0 {
				t.Errorf("temporary files appeared in TMPDIR: %v", seen)
			}
			// A client still sending when the server answers and closes may
			// lose the answer (0); what matters then is that nothing was read.
			if got != tc.want && got != 0 {
				t.Errorf("got %d, want %d", got, tc.want)
			}
			if n := countEvents(t, s.DB); n != before {
				t.Errorf("events: got %d, want %d (nothing appended)", n, before)
			}
		})
	}
	if a := ada.open("still works"); a == "" {
		t.Fatal("no ticket after the refusals")
	}
}

// A declared length over the cap is refused before a byte of the body
// arrives: a client trickling 40 MB cannot hold the handler.
func TestBodyLimitAnswersBeforeTheBody(t *testing.T) {
	s := startServer(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\nusername=a", 40<<20)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer within 5 s while the body trickles: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %d, want 413", res.StatusCode)
	}
}

func TestAccessLogStatus(t *testing.T) {
	var log syncBuffer
	s := startServerLogging(t, &log)
	ada, anon := newBrowser(t, s.URL), newBrowser(t, s.URL)
	ada.register("ada")
	ticket := ada.open("logged")
	cases := []struct {
		name string
		send func() answer
		want int
		line string
	}{
		{"unknown path", func() answer { return ada.get("/no/such/page") }, 404, "method=GET path=/no/such/page status=404"},
		{"unknown ticket (an errs error)", func() answer { return ada.get("/tickets/999") }, 404, "method=GET path=/tickets/999 status=404"},
		{"form re-shown", func() answer {
			return anon.post("/login", anon.form("/login", "", url.Values{"username": {"nobody"}, "password": {"wrong"}}))
		}, 422, "method=POST path=/login status=422"},
		{"JSON form refused (an errs error)", func() answer {
			return ada.do("POST", ticket+"/comments", ada.form(ticket, ticket+"/comments", url.Values{"body": {" "}}), "Accept", "application/json")
		}, 422, "method=POST path=" + ticket + "/comments status=422"},
		{"body too large", func() answer {
			return ada.post("/tickets", url.Values{"body": {strings.Repeat("x", 2<<20)}})
		}, 413, "method=POST path=/tickets status=413"},
	}
	for _, tc := range cases {
		if a := tc.send(); a.status != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, a.status, tc.want)
		}
		if !strings.Contains(log.String(), tc.line) {
			t.Errorf("%s: log has no %q:\n%s", tc.name, tc.line, log.String())
		}
	}
}

func TestCachingAndStatic(t *testing.T) {
	s := startServer(t)
	anon := newBrowser(t, s.URL)
	css := static.New().URL("braid.css")
	cases := []struct {
		name, path string
		wantStatus int
		wantCache  string
	}{
		{"static root not listed", "/static/", 404, "no-store"},
		{"static dot not listed", "/static/.", 404, "no-store"},
		{"static parent", "/static/..", 404, "no-store"},
		{"static escaped parent", "/static/%2e%2e/go.mod", 404, "no-store"},
		{"unknown asset", "/static/nope.css", 404, "no-store"},
		{"asset with its hash", css, 200, "public, max-age=31536000, immutable"},
		{"asset with another v", "/static/braid.css?v=0123456789", 200, "no-cache"},
		{"asset without v", "/static/braid.css", 200, "no-cache"},
		{"page", "/login", 200, "no-store"},
		{"redirect", "/tickets", 303, "no-store"},
		{"health", "/healthz", 200, "no-store"},
		{"signed out, unknown path", "/nope", 303, "no-store"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := anon.get(tc.path)
			if a.status != tc.wantStatus {
				t.Errorf("got %d, want %d", a.status, tc.wantStatus)
			}
			if got := a.header.Get("Cache-Control"); got != tc.wantCache {
				t.Errorf("Cache-Control: got %q, want %q", got, tc.wantCache)
			}
			if strings.Contains(a.body, `<a href="braid.css"`) {
				t.Errorf("a directory listing:\n%s", a.body)
			}
			if h := a.header.Get("Strict-Transport-Security"); h != "" {
				t.Errorf("HSTS %q without --secure-cookies", h)
			}
		})
	}
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	for _, tc := range []struct {
		path, accept string
		want         int
	}{{"/tickets", "", 200}, {"/tickets", "application/json", 200}, {"/verify", "application/json", 200}, {"/nope", "", 404}} {
		if a := ada.do("GET", tc.path, nil, "Accept", tc.accept); a.status != tc.want || a.header.Get("Cache-Control") != "no-store" {
			t.Errorf("signed in, %s (Accept %q): got %d with Cache-Control %q, want %d and no-store", tc.path, tc.accept, a.status, a.header.Get("Cache-Control"), tc.want)
		}
	}

	secure := startServer(t, "--secure-cookies")
	for _, path := range []string{"/healthz", css, "/nope"} {
		a := newBrowser(t, secure.URL).get(path)
		if got := a.header.Get("Strict-Transport-Security"); got != "max-age=63072000; includeSubDomains" {
			t.Errorf("%s with --secure-cookies: HSTS %q, want max-age=63072000; includeSubDomains", path, got)
		}
	}
}

// With no --trusted-proxy, X-Forwarded-For is ignored: one address sending
// a new header each time is still one address to the sign-in limit.
func TestForwardedForIgnoredByDefault(t *testing.T) {
	s := startServer(t)
	anon := newBrowser(t, s.URL)
	v := anon.form("/login", "", url.Values{"password": {"wrong"}})
	var last answer
	for i := range 40 {
		v.Set("username", fmt.Sprintf("nobody%d", i))
		last = anon.do("POST", "/login", v, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
		if last.status == http.StatusTooManyRequests {
			break
		}
	}
	if last.status != http.StatusTooManyRequests {
		t.Fatalf("40 failed sign-ins from 127.0.0.1 with rotating X-Forwarded-For: last got %d, want 429", last.status)
	}
}

func TestClientIP(t *testing.T) {
	var loop cidrList
	if err := loop.Set("127.0.0.1/32"); err != nil {
		t.Fatal(err)
	}
	var two cidrList
	if err := two.Set(" 10.0.0.0/8, 127.0.0.1 ,::1"); err != nil || len(two) != 3 {
		t.Fatalf("Set: got %v (%v), want three networks", two, err)
	}
	cases := []struct {
		name    string
		proxies cidrList
		fly     bool
		peer    string
		hdr     map[string]string
		want    string
	}{
		{"no proxy: XFF ignored", nil, false, "127.0.0.1:5000", map[string]string{"X-Forwarded-For": "198.51.100.7"}, "127.0.0.1"},
		{"no proxy: X-Real-IP ignored", nil, false, "10.1.2.3:5000", map[string]string{"X-Real-Ip": "198.51.100.7"}, "10.1.2.3"},
		{"no proxy: Fly header ignored off Fly", nil, false, "10.1.2.3:5000", map[string]string{"Fly-Client-Ip": "198.51.100.7"}, "10.1.2.3"},
		{"trusted proxy: XFF honoured", loop, false, "127.0.0.1:5000", map[string]string{"X-Forwarded-For": "198.51.100.7"}, "198.51.100.7"},
		{"trusted proxy: rightmost untrusted hop", loop, false, "127.0.0.1:5000", map[string]string{"X-Forwarded-For": "1.2.3.4, 198.51.100.7"}, "198.51.100.7"},
		{"trusted proxy: other peer not believed", loop, false, "10.0.0.5:5000", map[string]string{"X-Forwarded-For": "198.51.100.7"}, "10.0.0.5"},
		{"trusted proxy: garbage XFF", loop, false, "127.0.0.1:5000", map[string]string{"X-Forwarded-For": "not an ip"}, "127.0.0.1"},
		{"trusted proxy: no XFF", loop, false, "127.0.0.1:5000", nil, "127.0.0.1"},
		{"two proxies: both hops skipped", two, false, "127.0.0.1:5000", map[string]string{"X-Forwarded-For": "198.51.100.7, 10.9.9.9"}, "198.51.100.7"},
		{"fly: Fly-Client-IP", nil, true, "172.16.1.1:5000", map[string]string{"Fly-Client-Ip": "198.51.100.7", "X-Forwarded-For": "6.6.6.6"}, "198.51.100.7"},
		{"fly: garbage header", nil, true, "172.16.1.1:5000", map[string]string{"Fly-Client-Ip": "x"}, "172.16.1.1"},
		{"fly: no header", nil, true, "172.16.1.1:5000", nil, "172.16.1.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			if got := clientIP(tc.proxies, tc.fly)(r); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	var bad cidrList
	for _, v := range []string{"nonsense", "10.0.0.0/99", "1.2.3"} {
		if err := bad.Set(v); err == nil {
			t.Errorf("Set(%q): no error", v)
		}
	}
	var errb strings.Builder
	if code := run(context.Background(), []string{"serve", "--db", filepath.Join(t.TempDir(), "b.db"), "--trusted-proxy", "nonsense"},
		func(string) string { return "" }, nil, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "trusted-proxy") {
		t.Fatalf("--trusted-proxy nonsense: exit %d, stderr %q; want 2 naming the flag", code, errb.String())
	}
}
