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
		for _, e := range (<-reader.C()).Events {
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

// A subscriber that comes after the writer appended a batch's events but
// before it committed them is still told of the commit (by the head), so
// it reads those events from the log rather than waiting for the next
// batch: the stream's last event once went missing that way.
func TestHubTellsLateSubscriberOfTheCommit(t *testing.T) {
	hub := events.NewHub()
	defer hub.Close()
	if err := hub.Append(&events.Event{Position: 7, Type: "x"}); err != nil { // no subscriber yet
		t.Fatal(err)
	}
	s, err := hub.Subscribe(4)
	if err != nil {
		t.Fatal(err)
	}
	hub.Committed(events.Head{Position: 7})
	select {
	case b := <-s.C():
		if len(b.Events) != 0 || b.Head != 7 {
			t.Fatalf("got %+v, want no events and head 7", b)
		}
	case <-time.After(10 * time.Second): // a hang, not a measure
		t.Fatalf("the late subscriber was never told of position 7")
	}
	hub.Committed(events.Head{Position: 7}) // a batch that committed nothing new
	hub.Append(&events.Event{Position: 8, Type: "x"})
	hub.Committed(events.Head{Position: 8})
	if b := <-s.C(); len(b.Events) != 1 || b.Head != 8 {
		t.Fatalf("got %+v, want event 8 alone", b)
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
