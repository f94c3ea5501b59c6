package events

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
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
	// Erased counts the v2 events whose payload was erased: their hash is
	// checked from the stored commitment; they are not failures.
	Erased int64
}

// ErasedType is the event type that erases payloads (brief E's erase
// commands append it); a payload's erased_by must name one, later in the log.
const ErasedType = "erased"

// Checker checks a stream of events, in position order, link by link.
type Checker struct {
	h        *hasher
	prev     Head
	n        int64
	versions map[aggKey]int64
	fail     *Failure
	erased   int64
	// waiting maps the erased_by positions not reached yet to the first
	// erased payload naming each.
	waiting map[int64]int64
}

// payload is what a scanner found of a v2 event's payload before the
// checker sees it (the salt is not kept past the scan).
type payload uint8

const (
	payloadOK       payload = iota // v1, or v2 whose commitment matches, or erased
	payloadMissing                 // v2 with no payloads row, or no salt and not erased
	payloadMismatch                // v2 whose salt and data do not give the commitment
)

// checkPayload checks a v2 event's payload against its commitment.
func checkPayload(e *Event) payload {
	switch {
	case e.Format != 2 || e.ErasedBy != 0:
		return payloadOK
	case len(e.Salt) == 0:
		return payloadMissing
	case PayloadCommitment(e.Salt, e.Data) != e.Commitment:
		return payloadMismatch
	}
	return payloadOK
}

type aggKey struct{ typ, id string }

// NewChecker returns a checker expecting the log to start at position 1.
func NewChecker() *Checker {
	return &Checker{h: newHasher(), versions: map[aggKey]int64{}, waiting: map[int64]int64{}}
}

// Add checks e against the events before it; it returns the first failure,
// and keeps returning it after.
func (c *Checker) Add(e *Event) *Failure { return c.add(e, nil, checkPayload(e)) }

// add is Add with, when sum is not nil, the hash of e's body already
// computed (by Verify's scanners, in parallel), and pay what its payload
// came to.
func (c *Checker) add(e *Event, sum *[32]byte, pay payload) *Failure {
	if c.fail != nil {
		return c.fail
	}
	want := c.prev.Position + 1
	switch {
	case e.Position != want:
		c.fail = &Failure{Position: want, Reason: fmt.Sprintf("position gap: expected position %d, found %d", want, e.Position)}
	case e.ParentHash != c.prev.Hash:
		c.fail = &Failure{Position: e.Position, Reason: fmt.Sprintf("parent hash mismatch: expected %s (hash of position %d), found %s", Hex(c.prev.Hash), c.prev.Position, Hex(e.ParentHash))}
	case e.Format < 0 || e.Format > 2: // 0 (an export line without format) reads as 1
		c.fail = &Failure{Position: e.Position, Reason: fmt.Sprintf("unknown braid format %d", e.Format)}
	case pay == payloadMissing:
		c.fail = &Failure{Position: e.Position, Reason: "v2 payload missing: no payloads row with a salt, and not erased"}
	case pay == payloadMismatch:
		c.fail = &Failure{Position: e.Position, Reason: fmt.Sprintf("payload commitment mismatch: the salt and data stored do not give the commitment %s", Hex(e.Commitment))}
	case e.ErasedBy != 0 && e.ErasedBy <= e.Position:
		c.fail = &Failure{Position: e.Position, Reason: fmt.Sprintf("payload erased by position %d, which is not later in the log", e.ErasedBy)}
	case c.waiting[e.Position] != 0 && e.Type != ErasedType:
		c.fail = &Failure{Position: c.waiting[e.Position], Reason: fmt.Sprintf("payload erased by position %d, which is a %s event, not %s", e.Position, e.Type, ErasedType)}
	default:
		var got [32]byte
		if sum != nil {
			got = *sum
		} else {
			got = c.h.hash(e)
		}
		if got != e.Hash {
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
			// Keys are copied once per aggregate, so a caller may pass
			// strings that view a buffer it reuses.
			k = aggKey{strings.Clone(e.AggregateType), strings.Clone(e.AggregateID)}
		}
		c.versions[k] = e.Version
		c.prev = Head{Position: e.Position, Hash: e.Hash}
		c.n++
		delete(c.waiting, e.Position)
		if e.ErasedBy != 0 {
			c.erased++
			if _, ok := c.waiting[e.ErasedBy]; !ok {
				c.waiting[e.ErasedBy] = e.Position
			}
		}
	}
	return c.fail
}

// Report returns the outcome so far.
func (c *Checker) Report() Report {
	return Report{Intact: c.fail == nil, Events: c.n, Head: c.prev, Failure: c.fail, Erased: c.erased}
}

// settle checks the erased_by positions beyond the head the checker
// reached (q nil: there is nothing beyond, each is a failure): a payload read after an erasure committed may name an erased
// event appended after the head was read. Each must be an erased event in
// q now; anything else is a failure.
func (c *Checker) settle(ctx context.Context, q Querier) error {
	if c.fail != nil || len(c.waiting) == 0 {
		return nil
	}
	if q == nil {
		// No database beyond what was read (an export): the lowest such
		// payload is the failure.
		at, by := int64(0), int64(0)
		for b, a := range c.waiting {
			if at == 0 || a < at {
				at, by = a, b
			}
		}
		c.fail = &Failure{Position: at, Reason: fmt.Sprintf("payload erased by position %d, which is not in the log", by)}
		return nil
	}
	for by, at := range c.waiting {
		var typ string
		err := q.QueryRowContext(ctx, `SELECT event_type FROM events WHERE position = ?`, by).Scan(&typ)
		if errors.Is(err, sql.ErrNoRows) {
			c.fail = &Failure{Position: at, Reason: fmt.Sprintf("payload erased by position %d, which is not in the log", by)}
			return nil
		}
		if err != nil {
			return fmt.Errorf("verify: erased_by %d: %w", by, err)
		}
		if typ != ErasedType {
			c.fail = &Failure{Position: at, Reason: fmt.Sprintf("payload erased by position %d, which is a %s event, not %s", by, typ, ErasedType)}
			return nil
		}
	}
	return nil
}

// Verify walks the whole log in q and checks every link. Given the reader
// pool (*sql.DB) it reads the log on several connections at once and hashes
// while it reads (see verifyParallel); given a transaction or a connection
// it reads it in one stream.
func Verify(ctx context.Context, q Querier) (Report, error) {
	start := time.Now()
	c := NewChecker()
	var err error
	if db, ok := q.(*sql.DB); ok {
		err = verifyParallel(ctx, db, c)
	} else {
		err = Scan(ctx, q, 0, func(e *Event) error {
			if c.Add(e) != nil {
				return errStop
			}
			return nil
		})
	}
	if err == nil {
		err = c.settle(ctx, q)
	}
	if err != nil && err != errStop {
		return Report{}, err
	}
	r := c.Report()
	r.Took = time.Since(start)
	return r, nil
}

// Continue feeds c every event after the last one it has checked, up to
// the head, and returns its report (Took is this call's). A new checker
// reads the whole log (in parallel given the reader pool, as Verify does);
// one that has run before reads only what was appended since, so a caller
// that keeps its checker checks each event once. A checker that has found a
// failure reads nothing more: the log is append-only, so it stays broken.
func Continue(ctx context.Context, q Querier, c *Checker) (Report, error) {
	start := time.Now()
	var err error
	if db, ok := q.(*sql.DB); ok && c.prev.Position == 0 && c.fail == nil {
		err = verifyParallel(ctx, db, c)
	} else if c.fail == nil {
		err = Scan(ctx, q, c.prev.Position, func(e *Event) error {
			if c.Add(e) != nil {
				return errStop
			}
			return nil
		})
	}
	if err == nil {
		err = c.settle(ctx, q)
	}
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

// verifyChunk is how many positions one query of verifyParallel covers.
const verifyChunk = 4096

// verifyBatch is one chunk of the log as read by a scanner: the events, the
// hash of each one's body, and the buffer their payloads live in.
type verifyBatch struct {
	events []Event
	sums   [][32]byte
	pays   []payload
	data   []byte
	ends   []int // where each event's payload ends in data
	err    error
}

// verifyParallel feeds the log up to its current head into c. Reading rows
// out of SQLite costs far more than checking them, so several scanners, each
// on its own connection of the pool, read consecutive chunks of positions
// (scanner i takes chunks i, i+n, i+2n…) and hash every body as they go; this
// goroutine takes the chunks back in order and runs the checks that need the
// previous event. Events are never updated or deleted, so connections that
// started at different moments agree on every position up to the head read
// first; events appended meanwhile are left to the next verification.
// Batches are recycled, so a long log is read without per-event allocation
// beyond the driver's own.
func verifyParallel(ctx context.Context, db *sql.DB, c *Checker) error {
	var last int64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(position), 0) FROM events`).Scan(&last); err != nil {
		return fmt.Errorf("verify: read head: %w", err)
	}
	chunks := int((last + verifyChunk - 1) / verifyChunk)
	if chunks == 0 {
		return nil
	}
	workers := min(max(runtime.GOMAXPROCS(0), 2), 4, chunks)

	ctx, cancel := context.WithCancel(ctx)
	out := make([]chan *verifyBatch, workers)
	free := make(chan *verifyBatch, 3*workers)
	var wg sync.WaitGroup
	for w := range workers {
		out[w] = make(chan *verifyBatch, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(out[w])
			scanVerifyChunks(ctx, db, w, workers, chunks, out[w], free)
		}()
	}
	defer func() {
		cancel() // unblocks scanners still sending after an early return
		wg.Wait()
	}()

	for k := range chunks {
		b, ok := <-out[k%workers]
		if !ok {
			return ctx.Err()
		}
		if b.err != nil {
			return b.err
		}
		for i := range b.events {
			if c.add(&b.events[i], &b.sums[i], b.pays[i]) != nil {
				return errStop
			}
		}
		select {
		case free <- b:
		default:
		}
	}
	return nil
}

// scanVerifyChunks reads chunks w, w+n, w+2n… of the log in order, sending
// each, hashed, on out.
func scanVerifyChunks(ctx context.Context, db *sql.DB, w, n, chunks int, out chan<- *verifyBatch, free chan *verifyBatch) {
	st, err := db.PrepareContext(ctx, `SELECT `+eventColumns+` FROM `+eventsFrom+` WHERE e.position > ? AND e.position <= ? ORDER BY e.position`)
	if err != nil {
		sendBatch(ctx, out, &verifyBatch{err: fmt.Errorf("verify: %w", err)})
		return
	}
	defer st.Close()
	h := newHasher()
	var (
		e                        Event
		pos, ver, schema, format any
		data, ph, hash           sql.RawBytes
		commitment, salt         sql.RawBytes
		erased                   sql.NullInt64
	)
	dest := []any{&pos, &e.AggregateType, &e.AggregateID, &ver, &e.Type, &schema,
		&e.Actor, &e.OccurredAt, &e.CommandID, &data, &ph, &hash, &format, &commitment, &salt, &erased}
	for k := w; k < chunks; k += n {
		var b *verifyBatch
		select {
		case b = <-free:
			b.events, b.data, b.ends, b.pays = b.events[:0], b.data[:0], b.ends[:0], b.pays[:0]
		default:
			b = &verifyBatch{}
		}
		b.err = func() error {
			lo := int64(k) * verifyChunk
			rows, err := st.QueryContext(ctx, lo, lo+verifyChunk)
			if err != nil {
				return fmt.Errorf("verify: scan events: %w", err)
			}
			defer rows.Close()
			for rows.Next() {
				if err := rows.Scan(dest...); err != nil {
					return fmt.Errorf("verify: scan event: %w", err)
				}
				var ok1, ok2, ok3, ok4 bool
				e.Position, ok1 = pos.(int64)
				e.Version, ok2 = ver.(int64)
				s, ok3 := schema.(int64)
				f, ok4 := format.(int64)
				if !ok1 || !ok2 || !ok3 || !ok4 {
					return fmt.Errorf("verify: an event after position %d has a position, version, schema or format that is not an integer", lo)
				}
				e.Schema, e.Format = int(s), int(f)
				e.ParentHash, e.Hash, e.Commitment = [32]byte{}, [32]byte{}, [32]byte{}
				copy(e.ParentHash[:], ph)
				copy(e.Hash[:], hash)
				copy(e.Commitment[:], commitment)
				e.ErasedBy = erased.Int64
				// The salt is needed only here: check the commitment while
				// the row's bytes are at hand.
				e.Salt, e.Data = salt, data
				b.pays = append(b.pays, checkPayload(&e))
				e.Salt = nil
				// The payload is copied into the batch's buffer; Data is
				// pointed at it once the chunk is read, as appending may
				// move the buffer.
				b.data = append(b.data, data...)
				b.ends = append(b.ends, len(b.data))
				e.Data = nil
				b.events = append(b.events, e)
			}
			return rows.Err()
		}()
		if b.err == nil {
			if cap(b.sums) < len(b.events) {
				b.sums = make([][32]byte, len(b.events), cap(b.events))
			}
			b.sums = b.sums[:len(b.events)]
			off := 0
			for i, end := range b.ends {
				b.events[i].Data = b.data[off:end:end]
				off = end
				b.sums[i] = h.hash(&b.events[i])
			}
		}
		if !sendBatch(ctx, out, b) || b.err != nil {
			return
		}
	}
}

func sendBatch(ctx context.Context, out chan<- *verifyBatch, b *verifyBatch) bool {
	select {
	case out <- b:
		return true
	case <-ctx.Done():
		return false
	}
}
