package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSecondServeIsRefused: one web serve per database. A second one, or an
// import into the served database, exits 2 naming the first one's pid, and
// the first still answers.
func TestSecondServeIsRefused(t *testing.T) {
	s := startServer(t)
	want := fmt.Sprintf("another web serve (pid %d) is using %s", os.Getpid(), s.DB)
	for _, args := range [][]string{
		{"serve", "--db", s.DB, "--addr", "127.0.0.1:0"},
		{"import", "-", "--db", s.DB},
	} {
		// Bounded: without the lock a second serve would run until stopped.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var outb, errbb strings.Builder
		code := run(ctx, args, func(string) string { return "" }, strings.NewReader(""), &outb, &errbb)
		cancel()
		out, errb := outb.String(), errbb.String()
		if code != 2 || !strings.Contains(errb, want) || strings.Contains(out, "serving") {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q; want 2 and %q", args[0], code, out, errb, want)
		}
	}
	res, err := http.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the first server after a second was refused: /healthz %d", res.StatusCode)
	}
	// Once the first has stopped, the database is free again.
	if code := s.stop(); code != 0 {
		t.Fatalf("first server exit %d", code)
	}
	release, err := lockDB(s.DB)
	if err != nil {
		t.Fatalf("after the server stopped: %v", err)
	}
	release()
}
