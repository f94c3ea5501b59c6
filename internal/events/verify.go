package events

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// Failure is the first broken link found: where and what.
type Failure struct {
	Position int64  `json:"position"`
	Reason   string `json:"reason"`
}

// Report is the outcome of a verification.
type Report struct {
	Intact  bool
	Events  int64
	Head    Head
	Failure *Failure
	Took    time.Duration
}

// Checker checks a stream of events, in position order, link by link.
type Checker struct {
	h        *hasher
	prev     Head
	n        int64
	versions map[aggKey]int64
	fail     *Failure
}

type aggKey struct{ typ, id string }

// NewChecker returns a checker expecting the log to start at position 1.
func NewChecker() *Checker {
	return &Checker{h: newHasher(), versions: map[aggKey]int64{}}
}

// Add checks e against the events before it; it returns the first failure,
// and keeps returning it after.
func (c *Checker) Add(e *Event) *Failure {
	if c.fail != nil {
		return c.fail
	}
	want := c.prev.Position + 1
	switch {
	case e.Position != want:
		c.fail = &Failure{Position: want, Reason: fmt.Sprintf("position gap: expected position %d, found %d", want, e.Position)}
	case e.ParentHash != c.prev.Hash:
		c.fail = &Failure{Position: e.Position, Reason: fmt.Sprintf("parent hash mismatch: expected %s (hash of position %d), found %s", Hex(c.prev.Hash), c.prev.Position, Hex(e.ParentHash))}
	default:
		if got := c.h.hash(e); got != e.Hash {
			c.fail = &Failure{Position: e.Position, Reason: fmt.Sprintf("hash mismatch: expected %s (recomputed), found %s", Hex(got), Hex(e.Hash))}
			break
		}
		k := aggKey{e.AggregateType, e.AggregateID}
		v := c.versions[k]
		if e.Version != v+1 {
			c.fail = &Failure{Position: e.Position, Reason: fmt.Sprintf("version gap in %s %s: expected version %d, found %d", e.AggregateType, e.AggregateID, v+1, e.Version)}
			break
		}
		if v == 0 {
			// Keys are copied once per aggregate; strings from the scanner are fresh.
			k = aggKey{string([]byte(e.AggregateType)), string([]byte(e.AggregateID))}
		}
		c.versions[k] = e.Version
		c.prev = Head{Position: e.Position, Hash: e.Hash}
		c.n++
	}
	return c.fail
}

// Report returns the outcome so far.
func (c *Checker) Report() Report {
	return Report{Intact: c.fail == nil, Events: c.n, Head: c.prev, Failure: c.fail}
}

// Verify walks the whole log in q and checks every link.
func Verify(ctx context.Context, q Querier) (Report, error) {
	start := time.Now()
	c := NewChecker()
	err := Scan(ctx, q, 0, func(e *Event) error {
		if c.Add(e) != nil {
			return errStop
		}
		return nil
	})
	if err != nil && err != errStop {
		return Report{}, err
	}
	r := c.Report()
	r.Took = time.Since(start)
	return r, nil
}

type stopErr struct{}

func (stopErr) Error() string { return "stop" }

var errStop error = stopErr{}

// Equal reports whether two heads are the same.
func (h Head) Equal(o Head) bool {
	return h.Position == o.Position && bytes.Equal(h.Hash[:], o.Hash[:])
}
