package events

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Hub hands every committed batch of events to its subscribers (the live
// part of GET /events/stream). It is a Hook of the writer: Append gathers
// the batch's events and Committed hands the batch to the hub's own
// goroutine with one non-blocking send, whatever the number of
// subscribers. That goroutine offers it to each subscriber with a
// non-blocking send into the subscriber's bounded buffer; a subscriber
// whose buffer is full is dropped at once (its Gone channel closes). The
// writer never waits on anyone: should the hub's goroutine itself fall
// behind by feedSize batches, every subscriber is dropped instead. With no
// subscribers Append does nothing but read one counter.
//
// A subscriber may see a batch that starts past the position it had read
// up to (it subscribed in the middle of a batch, or after its last read of
// the log), or one with no events but a head past it (every event of the
// batch was appended before it subscribed, and its own read of the log
// came before the commit): the events in between are committed, so it
// reads them from the log. Positions at or below what it has already seen
// it skips.
type Hub struct {
	n       atomic.Int64 // subscribers, read by Append without the lock
	mu      sync.Mutex
	subs    map[*Sub]struct{}
	closed  bool
	pending []Event // writer goroutine only
	told    int64   // the last head handed on; writer goroutine only
	feed    chan Batch
	done    chan struct{}
}

// Batch is one committed batch as subscribers get it: the events
// appended while there were subscribers (all of the batch's, unless one
// subscribed during it) and the head once it committed.
type Batch struct {
	Events []Event
	Head   int64
}

// feedSize is how many committed batches may wait for the hub's goroutine.
const feedSize = 1024

// Sub is one subscriber of a Hub.
type Sub struct {
	h      *Hub
	c      chan Batch
	gone   chan struct{}
	reason string // why it was dropped, set before gone closes
}

// Dropped reasons, for the stream's last event.
const (
	ReasonSlow     = "slow consumer"
	ReasonShutdown = "server shutting down"
)

// NewHub returns a hub with no subscribers.
func NewHub() *Hub {
	h := &Hub{subs: map[*Sub]struct{}{}, feed: make(chan Batch, feedSize), done: make(chan struct{})}
	go h.fanOut()
	return h
}

// fanOut offers each committed batch to every subscriber, off the writer's
// goroutine, until Close.
func (h *Hub) fanOut() {
	for {
		select {
		case batch := <-h.feed:
			h.mu.Lock()
			for s := range h.subs {
				select {
				case s.c <- batch:
				default:
					h.drop(s, ReasonSlow)
				}
			}
			h.mu.Unlock()
		case <-h.done:
			return
		}
	}
}

// Subscribe adds a subscriber whose buffer holds up to buffer batches (at
// least 1). It fails only once the hub is closed.
func (h *Hub) Subscribe(buffer int) (*Sub, error) {
	if buffer < 1 {
		buffer = 1
	}
	s := &Sub{h: h, c: make(chan Batch, buffer), gone: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, fmt.Errorf("the server is shutting down")
	}
	h.subs[s] = struct{}{}
	h.n.Add(1)
	return s, nil
}

// Subscribers returns how many subscribers the hub has.
func (h *Hub) Subscribers() int { return int(h.n.Load()) }

// C delivers committed batches, in order. The events are shared with the
// other subscribers: never change them in place (copy an Event first).
func (s *Sub) C() <-chan Batch { return s.c }

// Gone is closed when the hub dropped the subscriber (Reason says why).
func (s *Sub) Gone() <-chan struct{} { return s.gone }

// Reason is why the subscriber was dropped; empty while it is not.
func (s *Sub) Reason() string {
	select {
	case <-s.gone:
		return s.reason
	default:
		return ""
	}
}

// Close unsubscribes; it may be called more than once.
func (s *Sub) Close() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if _, ok := s.h.subs[s]; ok {
		delete(s.h.subs, s)
		s.h.n.Add(-1)
	}
}

// drop removes s and closes its Gone channel; under h.mu.
func (h *Hub) drop(s *Sub, reason string) {
	delete(h.subs, s)
	h.n.Add(-1)
	s.reason = reason
	close(s.gone)
}

// Close drops every subscriber (the server is shutting down) and refuses
// new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		close(h.done)
	}
	h.closed = true
	for s := range h.subs {
		h.drop(s, ReasonShutdown)
	}
}

// Open is part of Hook: the hub keeps nothing.
func (h *Hub) Open(context.Context, Querier, Querier, Head) error { return nil }

// Append is part of Hook: it notes e for the batch's subscribers.
func (h *Hub) Append(e *Event) error {
	if h.n.Load() > 0 {
		h.pending = append(h.pending, *e)
	}
	return nil
}

// Rewind is part of Hook: it forgets events rolled back.
func (h *Hub) Rewind(head Head) {
	i := len(h.pending)
	for i > 0 && h.pending[i-1].Position > head.Position {
		i--
	}
	clear(h.pending[i:])
	h.pending = h.pending[:i]
}

// Flush is part of Hook: nothing to write.
func (h *Hub) Flush(context.Context, Querier) error { return nil }

// Committed is part of Hook: it hands the batch to the hub's goroutine
// without waiting.
func (h *Hub) Committed(head Head) {
	if len(h.pending) == 0 && (head.Position <= h.told || h.n.Load() == 0) {
		return // nothing new, or no one to tell
	}
	// Events appended before the first subscriber came are not in pending:
	// the head still tells it they committed.
	batch := Batch{Events: h.pending, Head: head.Position}
	h.pending, h.told = nil, head.Position // the events now belong to the subscribers
	select {
	case h.feed <- batch:
	default:
		// The hub is behind: no subscriber can be told in order any more.
		// They resume from the log.
		h.mu.Lock()
		for s := range h.subs {
			h.drop(s, ReasonSlow)
		}
		h.mu.Unlock()
	}
}

// After returns up to limit events with position > after, in order, that
// match f.
func After(ctx context.Context, q Querier, after int64, limit int, f Filter) ([]Event, error) {
	where, args := "e.position > ?", []any{after}
	if f.AggregateType != "" {
		where += " AND e.aggregate_type = ?"
		args = append(args, f.AggregateType)
	}
	if f.AggregateID != "" {
		where += " AND e.aggregate_id = ?"
		args = append(args, f.AggregateID)
	}
	if len(f.Types) > 0 {
		where += " AND e.event_type IN (?" + repeatComma(len(f.Types)-1) + ")"
		for _, t := range f.Types {
			args = append(args, t)
		}
	}
	args = append(args, limit)
	rows, err := q.QueryContext(ctx, `SELECT `+eventColumns+` FROM `+eventsFrom+` WHERE `+where+` ORDER BY e.position LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("events after %d: %w", after, err)
	}
	return scanEvents(rows)
}

func repeatComma(n int) string {
	b := make([]byte, 0, 2*n)
	for range n {
		b = append(b, ",?"...)
	}
	return string(b)
}

// Filter narrows a subscription: empty fields match everything.
type Filter struct {
	AggregateType string
	AggregateID   string
	Types         []string
}

// Match reports whether e passes f.
func (f Filter) Match(e *Event) bool {
	if f.AggregateType != "" && e.AggregateType != f.AggregateType {
		return false
	}
	if f.AggregateID != "" && e.AggregateID != f.AggregateID {
		return false
	}
	if len(f.Types) == 0 {
		return true
	}
	for _, t := range f.Types {
		if e.Type == t {
			return true
		}
	}
	return false
}
