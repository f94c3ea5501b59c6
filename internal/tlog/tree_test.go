package tlog_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	xtlog "golang.org/x/mod/sumdb/tlog"

	"braid/internal/events"
	"braid/internal/tlog"
	"braid/migrations"
)

type payload struct {
	N int `json:"n"`
}

type fixture struct {
	db   *events.DB
	reg  *events.Registry
	typ  events.Type[payload]
	tree *tlog.Tree
	w    *events.Writer
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	db, err := events.Open(context.Background(), filepath.Join(tb.TempDir(), "braid.db"), migrations.FS)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	reg := events.NewRegistry()
	f := &fixture{db: db, reg: reg, typ: events.Define[payload](reg, "note_added", 1)}
	f.open(tb)
	return f
}

// open starts a writer with a fresh tree on the fixture's database.
func (f *fixture) open(tb testing.TB) {
	tb.Helper()
	f.tree = tlog.New()
	w, err := events.NewWriter(context.Background(), f.db, f.reg, events.WriterOptions{Hooks: []events.Hook{f.tree}})
	if err != nil {
		tb.Fatal(err)
	}
	f.w = w
	tb.Cleanup(func() { w.Close() })
}

// add appends k events in one command; fail makes the command roll back
// after appending them.
func (f *fixture) add(tb testing.TB, k int, fail bool) {
	tb.Helper()
	_, err := f.w.Do(context.Background(), events.Command{Actor: "t",
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			ch := events.Change{AggregateType: "note", AggregateID: events.NewID()[:8], Expect: events.Any}
			for i := range k {
				ch.Events = append(ch.Events, f.typ.New(payload{N: i}))
			}
			return []events.Change{ch}, nil
		},
		After: func(ctx context.Context, q events.Querier, appended []events.Event) error {
			if fail {
				return errors.New("refused on purpose")
			}
			return nil
		}})
	if fail != (err != nil) {
		tb.Fatalf("command (fail=%v): %v", fail, err)
	}
}

// independent computes the stored hashes and root of the log with x/mod's
// tlog alone, from the braid hashes read back from the events table.
func independent(tb testing.TB, db *events.DB) (int64, []xtlog.Hash, xtlog.Hash) {
	tb.Helper()
	rows, err := db.Read.Query(`SELECT hash FROM events ORDER BY position`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var stored []xtlog.Hash
	var n int64
	r := xtlog.HashReaderFunc(func(idx []int64) ([]xtlog.Hash, error) {
		out := make([]xtlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			tb.Fatal(err)
		}
		hs, err := xtlog.StoredHashes(n, h, r)
		if err != nil {
			tb.Fatal(err)
		}
		stored = append(stored, hs...)
		n++
	}
	root, err := xtlog.TreeHash(n, r)
	if err != nil {
		tb.Fatal(err)
	}
	return n, stored, root
}

func storedTable(tb testing.TB, db *events.DB) []xtlog.Hash {
	tb.Helper()
	rows, err := db.Read.Query(`SELECT id, hash FROM tlog_hashes ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []xtlog.Hash
	for rows.Next() {
		var id int64
		var h []byte
		if err := rows.Scan(&id, &h); err != nil {
			tb.Fatal(err)
		}
		if id != int64(len(out)) {
			tb.Fatalf("tlog_hashes: id %d where %d was expected", id, len(out))
		}
		out = append(out, xtlog.Hash(h))
	}
	return out
}

// TestTreeMatchesXMod is the property test: for random sizes, appended in
// random command sizes with some commands rolled back, the root the tree
// keeps equals x/mod's TreeHash over the braid hashes read back from the
// events table, and the table holds exactly x/mod's stored hashes.
func TestTreeMatchesXMod(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, uint64(os.Getpid())))
	sizes := []int{1, 2, 3, 300}
	for range 6 {
		sizes = append(sizes, 1+rng.IntN(300))
	}
	for _, size := range sizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			f := newFixture(t)
			for n := 0; n < size; {
				k := min(1+rng.IntN(9), size-n)
				if rng.IntN(5) == 0 {
					f.add(t, k, true) // rolled back: the tree must forget it
				}
				f.add(t, k, false)
				n += k
			}
			n, stored, root := independent(t, f.db)
			if n != int64(size) {
				t.Fatalf("log has %d events, want %d", n, size)
			}
			if h := f.tree.Head(); h.Size != n || h.Root != root {
				t.Fatalf("tree head: size %d root %s; x/mod over the braid hashes: size %d root %s", h.Size, h.Root, n, root)
			}
			got := storedTable(t, f.db)
			if len(got) != len(stored) {
				t.Fatalf("tlog_hashes has %d rows, x/mod stores %d", len(got), len(stored))
			}
			for i := range got {
				if got[i] != stored[i] {
					t.Fatalf("tlog_hashes %d: %s, x/mod %s", i, got[i], stored[i])
				}
			}
			c, err := tlog.Verify(context.Background(), f.db.Read, n)
			if err != nil || !c.OK || c.Root != root || c.StoredRoot != root {
				t.Fatalf("Verify: %+v, %v", c, err)
			}
		})
	}
}

// TestTreeReopens: a writer started on an existing log loads the tree from
// the stored hashes, and builds what is missing from the log (a database
// from before the tree, or stored hashes cut short).
func TestTreeReopens(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.add(t, 7, false)
	f.add(t, 6, false)
	want := f.tree.Head()
	f.w.Close()
	f.open(t)
	if got := f.tree.Head(); got != want {
		t.Fatalf("reopened: %+v, want %+v", got, want)
	}
	f.w.Close()
	// Cut the stored hashes in the middle of a leaf's.
	if _, err := f.db.Write.ExecContext(ctx, `DELETE FROM tlog_hashes WHERE id >= 10`); err != nil {
		t.Fatal(err)
	}
	f.open(t)
	if got := f.tree.Head(); got != want {
		t.Fatalf("reopened after a cut: %+v, want %+v", got, want)
	}
	f.add(t, 5, false)
	_, stored, root := independent(t, f.db)
	if got := f.tree.Head(); got.Root != root || got.Size != 18 {
		t.Fatalf("after more appends: %+v, want size 18 root %s", got, root)
	}
	if got := storedTable(t, f.db); len(got) != len(stored) {
		t.Fatalf("tlog_hashes has %d rows, want %d", len(got), len(stored))
	}
}

// TestVerifyNamesFirstWrongHash: a changed or missing stored hash is
// reported with its index and the event it belongs to; Rebuild puts it
// right.
func TestVerifyNamesFirstWrongHash(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.add(t, 20, false)
	// Stored index 10 is leaf 6's hash (the event at position 7):
	// StoredHashIndex(0, 6) = 6 + 3 + 1 = 10.
	if xtlog.StoredHashIndex(0, 6) != 10 {
		t.Fatal("x/mod numbering changed")
	}
	f.w.Close() // the write pool is the writer's one connection
	if _, err := f.db.Write.ExecContext(ctx, `UPDATE tlog_hashes SET hash = zeroblob(32) WHERE id = 10`); err != nil {
		t.Fatal(err)
	}
	c, err := tlog.Verify(ctx, f.db.Read, 20)
	if err != nil {
		t.Fatal(err)
	}
	if c.OK || c.Index != 10 || c.Position != 7 || !strings.Contains(c.Problem, "stored hash 10") {
		t.Fatalf("Verify after changing stored hash 10: %+v", c)
	}
	if _, err := f.db.Write.ExecContext(ctx, `DELETE FROM tlog_hashes WHERE id = 10`); err != nil {
		t.Fatal(err)
	}
	if c, _ := tlog.Verify(ctx, f.db.Read, 20); c.OK || c.Index != 10 || !strings.Contains(c.Problem, "missing") {
		t.Fatalf("Verify after deleting stored hash 10: %+v", c)
	}
	f.open(t) // trusts the stored hashes it finds: Verify is what checks them
	if c, _ := tlog.Verify(ctx, f.db.Read, 20); c.OK {
		t.Fatalf("Verify after reopening: %+v", c)
	}
	if err := f.w.Exclusive(ctx, f.tree.Rebuild); err != nil {
		t.Fatal(err)
	}
	if c, err := tlog.Verify(ctx, f.db.Read, 20); err != nil || !c.OK {
		t.Fatalf("Verify after Rebuild: %+v, %v", c, err)
	}
	f.add(t, 3, false)
	_, _, root := independent(t, f.db)
	if h := f.tree.Head(); h.Size != 23 || h.Root != root {
		t.Fatalf("after Rebuild and 3 more: %+v, want root %s", h, root)
	}
}

// TestTreeDocExample recomputes the worked example of docs/braid.md: the
// three export lines form an intact braid, and their leaves, node and root
// are the ones printed, as is the checkpoint body.
func TestTreeDocExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "braid.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	lines := docBlock(t, doc, "tlog-example-export")
	if len(lines) != 3 {
		t.Fatalf("export block: %d lines, want 3", len(lines))
	}
	r, err := events.VerifyExport(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	if err != nil || !r.Intact || r.Events != 3 {
		t.Fatalf("the example's export lines: %+v, %v", r, err)
	}
	var leaves []tlog.Hash
	err = events.ReadExport(strings.NewReader(strings.Join(lines, "\n")), func(_ int64, e *events.Event) error {
		leaves = append(leaves, tlog.LeafHash(e.Hash))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	node := xtlog.NodeHash(leaves[0], leaves[1])
	root := xtlog.NodeHash(node, leaves[2])
	r3, err := xtlog.TreeHash(3, xtlog.HashReaderFunc(func(idx []int64) ([]xtlog.Hash, error) {
		all := []xtlog.Hash{leaves[0], leaves[1], node, leaves[2]} // stored order
		out := make([]xtlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = all[x]
		}
		return out, nil
	}))
	if err != nil || r3 != root {
		t.Fatalf("x/mod TreeHash(3) = %s, %v; want %s", r3, err, root)
	}
	want := map[string]tlog.Hash{"leaf 0": leaves[0], "leaf 1": leaves[1], "leaf 2": leaves[2], "node 0-1": node, "root": root}
	tree := docBlock(t, doc, "tlog-example-tree")
	if len(tree) != len(want) {
		t.Fatalf("tree block: %d lines, want %d", len(tree), len(want))
	}
	for _, l := range tree {
		f := strings.Fields(l)
		name, hx := strings.Join(f[:len(f)-1], " "), f[len(f)-1]
		h, ok := want[name]
		if !ok {
			t.Fatalf("tree block: unknown line %q", l)
		}
		if hx != hex.EncodeToString(h[:]) {
			t.Errorf("%s: doc says %s, recomputed %x", name, hx, h[:])
		}
	}
	cp := docBlock(t, doc, "tlog-example-checkpoint")
	wantCP := strings.Split(strings.TrimSuffix(string(tlog.FormatCheckpoint("braid.local/braid", tlog.Head{Size: 3, Root: root})), "\n"), "\n")
	if strings.Join(cp, "\n") != strings.Join(wantCP, "\n") {
		t.Errorf("checkpoint body: doc says\n%s\nrecomputed\n%s", strings.Join(cp, "\n"), strings.Join(wantCP, "\n"))
	}
	if cp[2] != base64.StdEncoding.EncodeToString(root[:]) {
		t.Errorf("checkpoint root line %q", cp[2])
	}
}

// docBlock returns the lines of the fenced block between <!-- name:begin -->
// and <!-- name:end --> in doc, fences and blank lines dropped.
func docBlock(t *testing.T, doc, name string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "<!-- "+name+":begin -->")
	if !ok {
		t.Fatalf("docs/braid.md has no <!-- %s:begin --> marker", name)
	}
	block, _, ok := strings.Cut(rest, "<!-- "+name+":end -->")
	if !ok {
		t.Fatalf("docs/braid.md has no <!-- %s:end --> marker", name)
	}
	var out []string
	for _, l := range strings.Split(block, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "```") {
			continue
		}
		out = append(out, l)
	}
	return out
}
