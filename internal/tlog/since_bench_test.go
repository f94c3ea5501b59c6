package tlog_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"braid/internal/events"
	"braid/internal/tlog"
)

// BenchmarkVerifySince compares `web verify --since` (tlog.VerifySince
// from a checkpoint kept 1,000 events ago, and from the head) with a full
// verify (every event rehashed and linked, every stored hash recomputed)
// on a log of BRAID_SINCE_EVENTS events (default 20,000), built once
// through the writer in a temporary directory. For the 1M figure:
//
//	BRAID_SINCE_EVENTS=1000000 go test -run '^$' -bench VerifySince -benchtime 3x -timeout 60m ./internal/tlog/
func BenchmarkVerifySince(b *testing.B) {
	n := int64(20_000)
	if s := os.Getenv("BRAID_SINCE_EVENTS"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 2_000 {
			b.Fatalf("BRAID_SINCE_EVENTS=%q: want a number of at least 2000", s)
		}
		n = v
	}
	ctx := context.Background()
	f := newFixture(b)
	for f.w.Head().Position < n {
		f.add(b, int(min(250, n-f.w.Head().Position)), false)
	}
	head := f.w.Head().Position
	at := func(size int64) tlog.Head {
		r, err := tlog.StoredRoot(ctx, f.db.Read, size)
		if err != nil {
			b.Fatal(err)
		}
		return tlog.Head{Size: size, Root: r}
	}
	for _, c := range []struct {
		name string
		from tlog.Head
	}{{"since-1000-new", at(head - 1000)}, {"since-0-new", at(head)}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				sc, err := tlog.VerifySince(ctx, f.db.Read, c.from)
				if err != nil || !sc.Consistent || sc.Size != head {
					b.Fatalf("verify since: %+v %v", sc, err)
				}
			}
		})
	}
	// A full `web verify` is both: the braid, then the tree.
	b.Run("full-braid", func(b *testing.B) {
		for b.Loop() {
			r, err := events.Verify(ctx, f.db.Read)
			if err != nil || !r.Intact || r.Head.Position != head {
				b.Fatalf("verify: %+v %v", r, err)
			}
		}
	})
	b.Run("full-tree", func(b *testing.B) {
		for b.Loop() {
			c, err := tlog.Verify(ctx, f.db.Read, head)
			if err != nil || !c.OK {
				b.Fatalf("tree verify: %+v %v", c, err)
			}
		}
	})
}
