package anchor_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"braid/internal/anchor"
	"braid/internal/anchor/anchortest"
)

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestJobBackoff(t *testing.T) {
	j := &anchor.Job{MinBackoff: 20 * time.Millisecond, MaxBackoff: 70 * time.Millisecond}
	for n, want := range map[int]time.Duration{1: 20 * time.Millisecond, 2: 40 * time.Millisecond, 3: 70 * time.Millisecond, 50: 70 * time.Millisecond} {
		if got := j.Backoff(n); got != want {
			t.Errorf("backoff(%d): got %v, want %v", n, got, want)
		}
	}
	d := &anchor.Job{}
	if got, want := d.Backoff(1), 5*time.Second; got != want {
		t.Errorf("default first backoff: got %v, want %v", got, want)
	}
	if got, want := d.Backoff(100), time.Hour; got != want {
		t.Errorf("default backoff cap: got %v, want %v (the interval)", got, want)
	}
}

func TestJobRetriesUntilTheWitnessIsUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := newTestLog(t)
	tsa := anchortest.NewTSA(t, "Braid Test")
	w := roots(t, tsa)
	tsa.Stop() // down: its port is closed

	var logs logBuffer
	job := &anchor.Job{Witness: w, Head: l.w.Head, DB: l.db.Aux,
		Interval: 150 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logs, nil))}
	anchors := func() int {
		list, err := anchor.List(ctx, l.db.Read)
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}

	done := make(chan error, 1)
	go func() { done <- job.Run(ctx) }()

	// An empty log is not anchored.
	waitFor(t, "the empty-log skip", func() bool { return logs.count("the log is empty") > 0 })

	h1 := l.append(t, 1)
	waitFor(t, "three failed attempts", func() bool { return logs.count("anchor failed") >= 3 })
	if n := anchors(); n != 0 {
		t.Fatalf("anchors while the TSA is down: got %d, want 0", n)
	}
	if !strings.Contains(logs.String(), "attempt=3") || !strings.Contains(logs.String(), "retry_in=40ms") {
		t.Fatalf("log: got %s, want attempts counted and the backoff capped at 40ms", logs.String())
	}

	tsa.Start(t) // back up on the same address
	waitFor(t, "the first anchor", func() bool { return anchors() == 1 })
	list, _ := anchor.List(ctx, l.db.Read)
	if list[0].Head != h1 {
		t.Fatalf("anchored head: got %+v, want %+v", list[0].Head, h1)
	}
	if err := w.Check(ctx, h1, list[0].Receipt); err != nil {
		t.Fatalf("check the recorded receipt: %v", err)
	}

	// The head has not moved: later rounds skip.
	waitFor(t, "two skips", func() bool { return logs.count("head unchanged") >= 2 })
	if n := anchors(); n != 1 {
		t.Fatalf("anchors with an unchanged head: got %d, want 1", n)
	}

	h2 := l.append(t, 2)
	waitFor(t, "the second anchor", func() bool { return anchors() == 2 })
	list, _ = anchor.List(ctx, l.db.Read)
	if list[1].Head != h2 {
		t.Fatalf("second anchored head: got %+v, want %+v", list[1].Head, h2)
	}

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("run after cancel: got %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
