package events_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"braid/internal/events"
)

// A subscriber that never reads is dropped once its buffer is full, and
// every command still completes; one that reads gets every committed
// event in order and nothing rolled back.
func TestHubDropsFullSubscriberWithoutWaiting(t *testing.T) {
	hub := events.NewHub()
	f := newFixtureWith(t, events.WriterOptions{Hooks: []events.Hook{hub}})
	ctx := context.Background()
	stalled, err := hub.Subscribe(2)
	if err != nil {
		t.Fatal(err)
	}
	reader, _ := hub.Subscribe(100)
	for i := range 5 {
		if _, err := f.bump(ctx, "a", 1, events.Any, ""); err != nil {
			t.Fatalf("command %d with a stalled subscriber: %v", i, err)
		}
		if _, err := f.bump(ctx, "a", 1, 0, ""); err == nil { // a conflict: rolled back
			t.Fatalf("stale expect accepted")
		}
	}
	select {
	case <-stalled.Gone():
	case <-time.After(10 * time.Second): // a hang, not a measure
		t.Fatalf("a full subscriber was not dropped")
	}
	if stalled.Reason() != events.ReasonSlow || reader.Reason() != "" {
		t.Fatalf("reasons %q, %q", stalled.Reason(), reader.Reason())
	}
	var got []int64
	for len(got) < 5 {
		for _, e := range <-reader.C() {
			got = append(got, e.Position)
		}
	}
	for i, p := range got {
		if p != int64(i+1) {
			t.Fatalf("reader got %v", got)
		}
	}
	if hub.Subscribers() != 1 {
		t.Fatalf("%d subscribers, want 1", hub.Subscribers())
	}
	hub.Close()
	if reader.Reason() != events.ReasonShutdown {
		t.Fatalf("after Close: %q", reader.Reason())
	}
}

// BenchmarkHubSubscribers is the writer's throughput (64 appenders, as
// BenchmarkAppend) with 0, 100 and 500 live subscribers draining the hub.
func BenchmarkHubSubscribers(b *testing.B) {
	for _, n := range []int{0, 100, 500} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			hub := events.NewHub()
			f := newFixtureWith(b, events.WriterOptions{Hooks: []events.Hook{hub}})
			ctx := context.Background()
			var wg sync.WaitGroup
			for range n {
				s, err := hub.Subscribe(256)
				if err != nil {
					b.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-s.C():
						case <-s.Gone():
							return
						}
					}
				}()
			}
			b.ResetTimer()
			took := split(b, b.N, func(g, i int) error {
				_, err := f.bump(ctx, fmt.Sprintf("c%d", g%8), 1, events.Any, "")
				return err
			})
			b.StopTimer()
			reportRate(b, b.N, took)
			if hub.Subscribers() != n {
				b.Fatalf("%d of %d subscribers left: some were dropped", hub.Subscribers(), n)
			}
			hub.Close()
			wg.Wait()
		})
	}
}
