// Package tlog keeps an RFC 6962 Merkle tree over the braid: leaf i is the
// leaf hash of the braid hash of the event at position i+1. The tree's
// stored hashes (x/mod tlog's StoredHashes model) live in the tlog_hashes
// table, written in the writer's transaction with the events; the tree head
// (size, root) is kept in memory beside the chain head. It is derived
// data: Rebuild recomputes it from the log and Verify checks it.
package tlog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	xtlog "golang.org/x/mod/sumdb/tlog"

	"braid/internal/events"
)

// Hash is a SHA-256 hash in the tree.
type Hash = xtlog.Hash

// LeafHash is the tree's leaf for an event: SHA-256(0x00 || braid hash),
// the RFC 6962 leaf hash of the 32 bytes of the event's braid hash.
func LeafHash(braid [32]byte) Hash { return xtlog.RecordHash(braid[:]) }

// Head is the size and root of the tree.
type Head struct {
	Size int64
	Root Hash
}

// EmptyRoot is the root of the empty tree, SHA-256 of nothing (RFC 6962).
var EmptyRoot, _ = xtlog.TreeHash(0, nil)

// frontier is the compact range of a tree: the roots of its complete
// subtrees, left to right, with strictly decreasing levels.
type frontier struct {
	hashes []Hash
	levels []int
}

func (f *frontier) clone() frontier {
	return frontier{hashes: append([]Hash(nil), f.hashes...), levels: append([]int(nil), f.levels...)}
}

// push appends leaf and returns out with the stored hashes it creates, in
// stored-index order: the leaf, then every subtree it completes.
func (f *frontier) push(leaf Hash, out []Hash) []Hash {
	f.hashes = append(f.hashes, leaf)
	f.levels = append(f.levels, 0)
	out = append(out, leaf)
	for n := len(f.levels); n >= 2 && f.levels[n-1] == f.levels[n-2]; n = len(f.levels) {
		h := xtlog.NodeHash(f.hashes[n-2], f.hashes[n-1])
		f.hashes = append(f.hashes[:n-2], h)
		f.levels = append(f.levels[:n-2], f.levels[n-2]+1)
		out = append(out, h)
	}
	return out
}

// root is the tree hash: the subtree roots folded from the right.
func (f *frontier) root() Hash {
	if len(f.hashes) == 0 {
		return EmptyRoot
	}
	h := f.hashes[len(f.hashes)-1]
	for i := len(f.hashes) - 2; i >= 0; i-- {
		h = xtlog.NodeHash(f.hashes[i], h)
	}
	return h
}

// Tree is the writer's hook (events.Hook) keeping the tree. Head and Grew
// are safe from any goroutine; the rest runs on the writer's goroutine.
type Tree struct {
	mu   sync.RWMutex
	head Head
	grew chan struct{}

	base     frontier // at the last commit
	baseSize int64
	front    frontier // in the open transaction
	size     int64
	leaves   []Hash // appended since the last commit, for Rewind
	pending  []Hash // stored hashes not yet written, from index StoredHashIndex(0, flushed)
	flushed  int64
}

// New returns an empty tree; the writer opens it (events.Hook.Open).
func New() *Tree {
	return &Tree{head: Head{Root: EmptyRoot}, grew: make(chan struct{}, 1)}
}

var _ events.Hook = (*Tree)(nil)

// Head returns the committed tree head.
func (t *Tree) Head() Head {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.head
}

// Grew receives a value after a commit that grew the tree (coalesced).
func (t *Tree) Grew() <-chan struct{} { return t.grew }

// Append adds the event's leaf (events.Hook).
func (t *Tree) Append(e *events.Event) error {
	if e.Position != t.size+1 {
		return fmt.Errorf("tlog: event at position %d appended to a tree of %d leaves", e.Position, t.size)
	}
	leaf := LeafHash(e.Hash)
	t.leaves = append(t.leaves, leaf)
	t.pending = t.front.push(leaf, t.pending)
	t.size++
	return nil
}

// Rewind forgets the leaves after head (events.Hook).
func (t *Tree) Rewind(head events.Head) {
	keep := head.Position - t.baseSize
	if keep < 0 || keep > int64(len(t.leaves)) {
		keep = 0 // cannot happen: the writer rewinds within its batch
	}
	leaves := t.leaves[:keep]
	t.front, t.size, t.pending, t.flushed = t.base.clone(), t.baseSize, t.pending[:0], t.baseSize
	for _, l := range leaves {
		t.pending = t.front.push(l, t.pending)
		t.size++
	}
	t.leaves = leaves
}

// Flush writes the pending stored hashes (events.Hook).
func (t *Tree) Flush(ctx context.Context, q events.Querier) error {
	if err := insertHashes(ctx, q, xtlog.StoredHashIndex(0, t.flushed), t.pending); err != nil {
		return err
	}
	t.pending, t.flushed = t.pending[:0], t.size
	return nil
}

// Committed publishes the new head (events.Hook).
func (t *Tree) Committed(head events.Head) {
	t.base, t.baseSize, t.leaves = t.front.clone(), t.size, t.leaves[:0]
	t.publish()
}

func (t *Tree) publish() {
	h := Head{Size: t.size, Root: t.front.root()}
	t.mu.Lock()
	grew := h.Size > t.head.Size
	t.head = h
	t.mu.Unlock()
	if grew {
		select {
		case t.grew <- struct{}{}:
		default:
		}
	}
}

// insertHashes writes hashes at stored indexes from, from+1, … in
// multi-row INSERTs of a few fixed shapes (64, 32, …, 1 rows), so that the
// writer's statement cache holds seven statements.
func insertHashes(ctx context.Context, q events.Querier, from int64, hashes []Hash) error {
	for len(hashes) > 0 {
		n := 64
		for n > len(hashes) {
			n /= 2
		}
		args := make([]any, 0, 2*n)
		for i := range n {
			args = append(args, from+int64(i), hashes[i][:])
		}
		if _, err := q.ExecContext(ctx, insertSQL[n], args...); err != nil {
			return fmt.Errorf("tlog: store hashes: %w", err)
		}
		from += int64(n)
		hashes = hashes[n:]
	}
	return nil
}

var insertSQL = func() map[int]string {
	m := map[int]string{}
	for n := 1; n <= 64; n *= 2 {
		m[n] = "INSERT INTO tlog_hashes (id, hash) VALUES " + strings.TrimSuffix(strings.Repeat("(?,?),", n), ",")
	}
	return m
}()

// Open brings the stored hashes up to head (events.Hook): it trusts the
// stored hashes it finds (Verify checks them), drops any beyond head or
// left half-written, and appends the leaves of the events after them.
//
// The log's head is read again inside the transaction: another process's
// writer (a `web replay` beside `serve`) may have appended since head was
// read, and its stored hashes must not be taken for stray ones.
func (t *Tree) Open(ctx context.Context, read, write events.Querier, head events.Head) error {
	if _, err := write.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return fmt.Errorf("tlog: open: %w", err)
	}
	err := func() error {
		var stored, last int64
		if err := write.QueryRowContext(ctx, `SELECT COALESCE(MAX(id) + 1, 0) FROM tlog_hashes`).Scan(&stored); err != nil {
			return err
		}
		if err := write.QueryRowContext(ctx, `SELECT COALESCE(MAX(position), 0) FROM events`).Scan(&last); err != nil {
			return err
		}
		n := leavesIn(stored, last)
		if stored > xtlog.StoredHashIndex(0, n) {
			if _, err := write.ExecContext(ctx, `DELETE FROM tlog_hashes WHERE id >= ?`, xtlog.StoredHashIndex(0, n)); err != nil {
				return err
			}
		}
		f, err := loadFrontier(ctx, write, n)
		if err != nil {
			// A stored subtree root is missing or malformed: start over.
			if _, err := write.ExecContext(ctx, `DELETE FROM tlog_hashes`); err != nil {
				return err
			}
			f, n = frontier{}, 0
		}
		t.front, t.size, t.flushed = f, n, n
		t.pending, t.leaves = t.pending[:0], t.leaves[:0]
		return t.extend(ctx, read, write, last)
	}()
	if err == nil {
		_, err = write.ExecContext(ctx, `COMMIT`)
	}
	if err != nil {
		write.ExecContext(ctx, `ROLLBACK`)
		return fmt.Errorf("tlog: open: %w", err)
	}
	t.base, t.baseSize, t.leaves = t.front.clone(), t.size, t.leaves[:0]
	t.publish()
	return nil
}

// Rebuild recomputes every stored hash from the braid hashes in the log,
// on q inside the caller's transaction (replay runs it in the writer's,
// through Exclusive, so nothing appends meanwhile). It reads the log in
// chunks and closes each before writing, so q may be one connection.
func (t *Tree) Rebuild(ctx context.Context, q events.Querier) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM tlog_hashes`); err != nil {
		return fmt.Errorf("tlog: rebuild: %w", err)
	}
	t.front, t.size, t.flushed = frontier{}, 0, 0
	t.pending, t.leaves = t.pending[:0], t.leaves[:0]
	if err := t.extend(ctx, q, q, -1); err != nil {
		return fmt.Errorf("tlog: rebuild: %w", err)
	}
	// The writer calls Committed when its transaction commits.
	t.base, t.baseSize = t.front.clone(), t.size
	return nil
}

// extend appends the leaves of the events after t.size, up to position to
// (-1: the end of the log), writing stored hashes every chunk.
func (t *Tree) extend(ctx context.Context, read, write events.Querier, to int64) error {
	const chunk = 8192
	for to < 0 || t.size < to {
		hashes, err := braidHashes(ctx, read, t.size, chunk)
		if err != nil {
			return err
		}
		if len(hashes) == 0 {
			if to >= 0 {
				return fmt.Errorf("the log ends at position %d, want %d", t.size, to)
			}
			return nil
		}
		for _, h := range hashes {
			if to >= 0 && t.size == to {
				break
			}
			t.pending = t.front.push(LeafHash(h), t.pending)
			t.size++
		}
		if err := t.Flush(ctx, write); err != nil {
			return err
		}
	}
	return nil
}

// braidHashes reads up to limit braid hashes of the events after position
// after, checking the positions have no gap.
func braidHashes(ctx context.Context, q events.Querier, after int64, limit int) ([][32]byte, error) {
	rows, err := q.QueryContext(ctx, `SELECT position, hash FROM events WHERE position > ? ORDER BY position LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read braid hashes: %w", err)
	}
	defer rows.Close()
	var out [][32]byte
	for rows.Next() {
		var pos int64
		var b []byte
		if err := rows.Scan(&pos, &b); err != nil {
			return nil, fmt.Errorf("read braid hashes: %w", err)
		}
		if pos != after+int64(len(out))+1 || len(b) != 32 {
			return nil, fmt.Errorf("event at position %d: want position %d with a 32-byte hash", pos, after+int64(len(out))+1)
		}
		out = append(out, [32]byte(b))
	}
	return out, rows.Err()
}

// leavesIn is the number of leaves whose stored hashes are all among the
// first stored ones, at most max.
func leavesIn(stored, max int64) int64 {
	lo, hi := int64(0), max // StoredHashIndex(0, lo) <= stored
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if xtlog.StoredHashIndex(0, mid) <= stored {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// loadFrontier reads the subtree roots of a tree of n leaves.
func loadFrontier(ctx context.Context, q events.Querier, n int64) (frontier, error) {
	var f frontier
	var start int64
	for level := 62; level >= 0; level-- {
		if n&(1<<level) == 0 {
			continue
		}
		var b []byte
		idx := xtlog.StoredHashIndex(level, start>>level)
		if err := q.QueryRowContext(ctx, `SELECT hash FROM tlog_hashes WHERE id = ?`, idx).Scan(&b); err != nil {
			return f, fmt.Errorf("stored hash %d: %w", idx, err)
		}
		if len(b) != xtlog.HashSize {
			return f, fmt.Errorf("stored hash %d has %d bytes", idx, len(b))
		}
		f.hashes = append(f.hashes, Hash(b))
		f.levels = append(f.levels, level)
		start += 1 << level
	}
	return f, nil
}

// Reader reads stored hashes from the tlog_hashes table (x/mod's
// HashReader).
type Reader struct {
	Ctx context.Context
	Q   events.Querier
}

// ReadHashes returns the stored hashes at indexes, in batches of up to
// 256 per query.
func (r Reader) ReadHashes(indexes []int64) ([]Hash, error) {
	out := make([]Hash, len(indexes))
	for start := 0; start < len(indexes); start += 256 {
		batch := indexes[start:min(start+256, len(indexes))]
		args := make([]any, len(batch))
		for i, idx := range batch {
			args[i] = idx
		}
		rows, err := r.Q.QueryContext(r.Ctx, `SELECT id, hash FROM tlog_hashes WHERE id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(batch)), ",")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("stored hashes: %w", err)
		}
		got := make(map[int64]Hash, len(batch))
		for rows.Next() {
			var id int64
			var b []byte
			if err := rows.Scan(&id, &b); err != nil {
				rows.Close()
				return nil, fmt.Errorf("stored hashes: %w", err)
			}
			if len(b) != xtlog.HashSize {
				rows.Close()
				return nil, fmt.Errorf("stored hash %d has %d bytes", id, len(b))
			}
			got[id] = Hash(b)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, fmt.Errorf("stored hashes: %w", err)
		}
		for i, idx := range batch {
			h, ok := got[idx]
			if !ok {
				return nil, fmt.Errorf("no stored hash %d", idx)
			}
			out[start+i] = h
		}
	}
	return out, nil
}
