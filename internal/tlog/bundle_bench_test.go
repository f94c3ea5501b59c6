package tlog_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"braid/internal/events"
	"braid/internal/tlog"
)

// BenchmarkVerifyBundle is `web verify --bundle`'s work on a bundle of 50
// events in a log of BRAID_BENCH_EVENTS events (default 20,000): the
// checkpoint signature, 50 braid hashes and 50 inclusion proofs. Run with
// go test -run '^$' -bench BenchmarkVerifyBundle ./internal/tlog
func BenchmarkVerifyBundle(b *testing.B) {
	size := 20_000
	if n, err := strconv.Atoi(os.Getenv("BRAID_BENCH_EVENTS")); err == nil && n > 50 {
		size = n
	}
	ctx := context.Background()
	f := newFixture(b)
	add := func(id string, k int) {
		_, err := f.w.Do(ctx, events.Command{Actor: "t", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			ch := events.Change{AggregateType: "note", AggregateID: id, Expect: events.Any}
			for i := range k {
				ch.Events = append(ch.Events, f.typ.New(payload{N: i}))
			}
			return []events.Change{ch}, nil
		}})
		if err != nil {
			b.Fatal(err)
		}
	}
	// The bundle's aggregate: 50 events spread over the log.
	id := "bundled"
	step := max(size/50, 1)
	for n := 0; n < size; {
		add(id, 1)
		k := min(step-1, size-n-1)
		if k > 0 {
			add("n"+strconv.Itoa(n), k)
		}
		n += 1 + k
	}
	k, _, err := tlog.LoadOrCreateKey(filepath.Join(b.TempDir(), "k"), "braid.local/bench")
	if err != nil {
		b.Fatal(err)
	}
	h := f.tree.Head()
	text, err := (&tlog.Signer{Key: k}).Sign(h)
	if err != nil {
		b.Fatal(err)
	}
	bundle, err := tlog.BuildBundle(ctx, f.db.Read, tlog.Checkpoint{Head: h, Note: string(text)}, k.VKey, "note", id)
	if err != nil {
		b.Fatal(err)
	}
	data, err := json.Marshal(bundle)
	if err != nil {
		b.Fatal(err)
	}
	if dir := os.Getenv("BRAID_BENCH_BUNDLE_DIR"); dir != "" {
		// For timing tools/verify-bundle.py on the same bundle.
		os.WriteFile(filepath.Join(dir, "bundle.json"), data, 0o644)
		os.WriteFile(filepath.Join(dir, "vkey"), []byte(k.VKey), 0o644)
	}
	v, err := note.NewVerifier(k.VKey)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		c, err := tlog.VerifyBundle(data, v)
		if err != nil || !c.OK || c.Events != 50 {
			b.Fatalf("%+v %v", c, err)
		}
	}
	b.ReportMetric(float64(len(data)), "bundle-bytes")
}
