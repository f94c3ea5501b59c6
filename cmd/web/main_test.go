package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer is the real program, started through run on a fresh database
// and a free port.
type testServer struct {
	URL  string
	DB   string
	Log  *capped // what the server wrote to stderr, its first MiB
	stop func() int
}

// capped keeps the first MiB written to it, safe for concurrent use.
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := 1<<20 - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func startServer(tb testing.TB, extra ...string) *testServer {
	tb.Helper()
	dir := tb.TempDir()
	db := filepath.Join(dir, "braid.db")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	args := append([]string{"serve", "--db", db, "--addr", "127.0.0.1:0"}, extra...)
	if !slices.Contains(extra, "--registration") {
		// Tests register several people without invitations; the joining
		// tests pass --registration "" to run under the log's own mode.
		args = append(args, "--registration", "open")
	}
	logs := &capped{}
	go func() {
		done <- run(ctx, args, func(string) string { return "" }, strings.NewReader(""), pw, logs)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		tb.Fatalf("server did not start: %v (exit %d)", err, <-done)
	}
	go io.Copy(io.Discard, pr)
	i := strings.Index(line, "http://")
	if i < 0 {
		cancel()
		tb.Fatalf("first line %q has no URL", line)
	}
	s := &testServer{URL: strings.TrimSpace(line[i:]), DB: db, Log: logs}
	stopped := false
	code := 0
	s.stop = func() int {
		if !stopped {
			stopped = true
			cancel()
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				tb.Errorf("server did not shut down")
			}
		}
		return code
	}
	tb.Cleanup(func() { s.stop() })
	return s
}

func TestServeStartsOnFreshDatabase(t *testing.T) {
	s := startServer(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	res, err := client.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: got %d, want 200", res.StatusCode)
	}

	res, err = client.Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/tickets" {
		t.Fatalf("GET /: got %d to %q, want 303 to /tickets", res.StatusCode, res.Header.Get("Location"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q: want frame-ancestors none and no unsafe-inline", csp)
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("exit code after SIGINT-like shutdown: got %d, want 0", code)
	}
}

func TestHelpAndUnknownCommand(t *testing.T) {
	var out, errb strings.Builder
	if code := run(context.Background(), []string{"help"}, func(string) string { return "" }, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "verify") {
		t.Fatalf("help: exit %d, output %q", code, out.String())
	}
	for _, cmd := range []string{"serve", "replay", "verify", "export", "import", "anchor"} {
		errb.Reset()
		if code := run(context.Background(), []string{cmd, "--help"}, func(string) string { return "" }, nil, &out, &errb); code != 0 || !strings.Contains(errb.String(), "Usage: web "+cmd) {
			t.Fatalf("%s --help: exit %d, output %q; want 0 and its usage", cmd, code, errb.String())
		}
	}
	if code := run(context.Background(), []string{"verify", "--no-such-flag"}, func(string) string { return "" }, nil, &out, &errb); code != 2 {
		t.Fatalf("a bad flag: exit %d, want 2", code)
	}
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("unknown command: exit %d, stderr %q; want 2 and a message", code, errb.String())
	}
}
