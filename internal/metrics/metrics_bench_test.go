package metrics

import (
	"testing"
	"time"

	"braid/internal/events"
)

// BenchmarkObserve is what the writer pays per command for the metrics:
// one command counted and, at most, one batch recorded.
func BenchmarkObserve(b *testing.B) {
	m := New()
	s := events.BatchStats{Commands: 1, Committed: true, Commit: 2 * time.Millisecond, Total: 3 * time.Millisecond}
	for b.Loop() {
		m.Command("ticket_opened", "ok")
		m.Batch(s)
	}
}

func BenchmarkObserveCommand(b *testing.B) {
	m := New()
	for b.Loop() {
		m.Command("ticket_opened", "ok")
	}
}
