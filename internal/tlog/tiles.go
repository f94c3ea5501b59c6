package tlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	xtlog "golang.org/x/mod/sumdb/tlog"

	"braid/internal/events"
)

// TileHeight is the height of every tile (C2SP tlog-tiles): a full tile
// holds 256 hashes, or 256 entries.
const TileHeight = 8

// TileWidth is the number of hashes (or entries) in a full tile.
const TileWidth = 1 << TileHeight

// ErrNotFound is returned for a tile or proof beyond the signed tree.
var ErrNotFound = errors.New("not in the signed tree")

// Tile names a tile per C2SP tlog-tiles: a hash tile of level L (the
// hashes of tree level 8·L) or, with Entries, an entry bundle; N is its
// index within the level, W its width (TileWidth for a full tile).
type Tile struct {
	L       int
	N       int64
	W       int
	Entries bool
}

// Path is the tile's path per C2SP tlog-tiles, "tile/<L>/<N>[.p/<W>]" or
// "tile/entries/<N>[.p/<W>]", N in 3-digit elements, all but the last
// prefixed with x (1234067: x001/x234/067).
func (t Tile) Path() string {
	var b strings.Builder
	b.WriteString("tile/")
	if t.Entries {
		b.WriteString("entries/")
	} else {
		b.WriteString(strconv.Itoa(t.L) + "/")
	}
	var groups []string
	for n := t.N; ; n /= 1000 {
		groups = append(groups, fmt.Sprintf("%03d", n%1000))
		if n < 1000 {
			break
		}
	}
	for i := len(groups) - 1; i > 0; i-- {
		b.WriteString("x" + groups[i] + "/")
	}
	b.WriteString(groups[0])
	if t.W < TileWidth {
		b.WriteString(".p/" + strconv.Itoa(t.W))
	}
	return b.String()
}

// ParseTilePath reads a path Path writes, refusing any other spelling of
// the same tile (leading zeroes, a needless x000 element, a width of 0 or
// 256 after .p).
func ParseTilePath(path string) (Tile, error) {
	bad := func() (Tile, error) { return Tile{}, fmt.Errorf("%q is not a tile path", path) }
	rest, ok := strings.CutPrefix(path, "tile/")
	if !ok {
		return bad()
	}
	var t Tile
	head, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return bad()
	}
	if head == "entries" {
		t.Entries = true
	} else {
		l, ok := decimal(head, 63)
		if !ok {
			return bad()
		}
		t.L = int(l)
	}
	t.W = TileWidth
	if i := strings.Index(rest, ".p/"); i >= 0 {
		w, ok := decimal(rest[i+3:], TileWidth-1)
		if !ok || w == 0 {
			return bad()
		}
		t.W, rest = int(w), rest[:i]
	}
	elems := strings.Split(rest, "/")
	if len(elems) > 7 { // 7 groups of 3 digits hold any int64 index
		return bad()
	}
	for i, e := range elems {
		if i < len(elems)-1 {
			if e, ok = strings.CutPrefix(e, "x"); !ok {
				return bad()
			}
		}
		if len(e) != 3 || e[0] < '0' || e[0] > '9' || e[1] < '0' || e[1] > '9' || e[2] < '0' || e[2] > '9' {
			return bad()
		}
		d := int64(e[0]-'0')*100 + int64(e[1]-'0')*10 + int64(e[2]-'0')
		if t.N > (math.MaxInt64-d)/1000 {
			return bad()
		}
		t.N = t.N*1000 + d
	}
	if t.Path() != path {
		return bad() // x000/…, or an index too large for its level
	}
	return t, nil
}

// decimal reads s as a decimal number of at most max with no leading zero.
func decimal(s string, max int64) (int64, bool) {
	if s == "" || len(s) > 1 && s[0] == '0' || len(s) > 19 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n <= max
}

// covers reports whether a tree of size leaves holds all of t.
func (t Tile) covers(size int64) bool {
	if t.L*TileHeight >= 63 {
		return false
	}
	hashes := size >> (t.L * TileHeight) // complete subtrees at the tile's tree level
	if t.Entries {
		hashes = size
	}
	return t.N <= (hashes-int64(t.W))/TileWidth && t.N*TileWidth+int64(t.W) <= hashes
}

// ReadTile returns the hash tile t of a tree of size leaves, from the
// stored hashes in q: the W hashes of tree level 8·L from index 256·N, 32
// bytes each. ErrNotFound when the tree does not hold all of them.
func ReadTile(ctx context.Context, q events.Querier, size int64, t Tile) ([]byte, error) {
	if t.Entries || !t.covers(size) {
		return nil, ErrNotFound
	}
	return xtlog.ReadTileData(xtlog.Tile{H: TileHeight, L: t.L, N: t.N, W: t.W}, Reader{Ctx: ctx, Q: q})
}

// ReadEntryBundle returns the entry bundle t of a tree of size leaves: the
// export line (events.Event's JSON, no newline) of each event at positions
// 256·N+1 … 256·N+W, each preceded by its length as a big-endian uint16.
// ErrNotFound when the tree does not hold them all.
func ReadEntryBundle(ctx context.Context, q events.Querier, size int64, t Tile) ([]byte, error) {
	if !t.Entries || !t.covers(size) {
		return nil, ErrNotFound
	}
	first := t.N * TileWidth
	var out []byte
	n := 0
	errDone := errors.New("done")
	err := events.Scan(ctx, q, first, func(e *events.Event) error {
		if e.Position != first+int64(n)+1 {
			return fmt.Errorf("entry bundle: event at position %d, want %d", e.Position, first+int64(n)+1)
		}
		line, err := e.MarshalJSON()
		if err != nil {
			return err
		}
		if len(line) > 0xffff {
			return fmt.Errorf("entry bundle: the export line of event %d is %d bytes, more than an entry bundle's 65535", e.Position, len(line))
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(line)))
		out = append(out, line...)
		if n++; n == t.W {
			return errDone
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDone) {
		return nil, err
	}
	if n != t.W {
		return nil, fmt.Errorf("entry bundle: the log ends at position %d, want %d", first+int64(n), first+int64(t.W))
	}
	return out, nil
}

// InclusionProof proves the event at Position is leaf Position-1 of the
// tree of Size leaves with Root.
type InclusionProof struct {
	Position int64
	Size     int64
	Leaf     Hash
	Root     Hash
	Proof    []Hash
}

// ProveInclusion returns the inclusion proof of the event at position in
// the tree of size leaves, from the stored hashes in q. ErrNotFound when
// position or size is past the stored tree.
func ProveInclusion(ctx context.Context, q events.Querier, size, position int64) (InclusionProof, error) {
	p := InclusionProof{Position: position, Size: size}
	if size < 1 || position < 1 || position > size {
		return p, fmt.Errorf("position %d in a tree of %d: want 1 ≤ position ≤ size", position, size)
	}
	r := Reader{Ctx: ctx, Q: q}
	if err := stored(ctx, q, size); err != nil {
		return p, err
	}
	leaf, err := r.ReadHashes([]int64{xtlog.StoredHashIndex(0, position-1)})
	if err != nil {
		return p, err
	}
	p.Leaf = leaf[0]
	if p.Root, err = xtlog.TreeHash(size, r); err != nil {
		return p, err
	}
	proof, err := xtlog.ProveRecord(size, position-1, r)
	p.Proof = proof
	return p, err
}

// ConsistencyProof proves the tree of Old leaves with OldRoot is a prefix
// of the tree of Size leaves with Root.
type ConsistencyProof struct {
	Old     int64
	Size    int64
	OldRoot Hash
	Root    Hash
	Proof   []Hash
}

// ProveConsistency returns the consistency proof from the tree of old
// leaves to the one of size, from the stored hashes in q.
func ProveConsistency(ctx context.Context, q events.Querier, old, size int64) (ConsistencyProof, error) {
	p := ConsistencyProof{Old: old, Size: size}
	if old < 1 || old > size {
		return p, fmt.Errorf("old size %d, size %d: want 1 ≤ old ≤ size", old, size)
	}
	if err := stored(ctx, q, size); err != nil {
		return p, err
	}
	r := Reader{Ctx: ctx, Q: q}
	var err error
	if p.OldRoot, err = xtlog.TreeHash(old, r); err != nil {
		return p, err
	}
	if p.Root, err = xtlog.TreeHash(size, r); err != nil {
		return p, err
	}
	proof, err := xtlog.ProveTree(size, old, r)
	p.Proof = proof
	return p, err
}

// stored returns ErrNotFound unless q holds the stored hashes of a tree of
// size leaves.
func stored(ctx context.Context, q events.Querier, size int64) error {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM tlog_hashes WHERE id = ?`, xtlog.StoredHashIndex(0, size-1)).Scan(&n)
	if err != nil {
		return fmt.Errorf("stored hashes: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
