package events_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"braid/internal/events"
	"braid/migrations"
)

// The seed corpora live in testdata/fuzz/FuzzX: a few valid exports (one
// carrying raw bytes) and broken ones. Run one target for a bounded time:
//
//	go test -run '^$' -fuzz '^FuzzReadExport$' -fuzztime 15s ./internal/events/

// FuzzReadExport: no input panics the reader, and every line it accepts
// encodes back to a line that reads as the same event.
func FuzzReadExport(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		events.ReadExport(bytes.NewReader(in), func(line int64, e *events.Event) error {
			b, err := e.MarshalJSON()
			if err != nil {
				t.Fatalf("line %d: an accepted event does not encode: %v", line, err)
			}
			var again events.Event
			if err := events.ReadExport(bytes.NewReader(b), func(_ int64, a *events.Event) error { again = *a; return nil }); err != nil {
				t.Fatalf("line %d: its own encoding %s is refused: %v", line, b, err)
			}
			if !reflect.DeepEqual(normal(again), normal(*e)) {
				t.Fatalf("line %d: read %+v, re-encoded as %s, read back %+v", line, *e, b, again)
			}
			return nil
		})
	})
}

// normal makes an empty payload compare equal to a nil one.
func normal(e events.Event) events.Event {
	if len(e.Data) == 0 {
		e.Data = nil
	}
	return e
}

// FuzzVerifyExport: no input panics the verifier, and it never calls a file
// intact unless every position follows the one before, every parent is the
// hash before it and every hash recomputes.
func FuzzVerifyExport(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		rep, err := events.VerifyExport(bytes.NewReader(in))
		if err != nil || !rep.Intact {
			return
		}
		var prev [32]byte
		var n int64
		rerr := events.ReadExport(bytes.NewReader(in), func(line int64, e *events.Event) error {
			n++
			if e.Position != n || e.ParentHash != prev || e.ComputeHash() != e.Hash {
				t.Fatalf("called intact, but line %d does not recompute: %+v", line, *e)
			}
			prev = e.Hash
			return nil
		})
		if rerr != nil || n != rep.Events || prev != rep.Head.Hash {
			t.Fatalf("called intact with %d events, head %x; reading again: %v, %d events, head %x", rep.Events, rep.Head.Hash, rerr, n, prev)
		}
	})
}

// FuzzImport: no input panics an import into a fresh database; an import
// that is refused leaves nothing behind (no event, no projection row, no
// checkpoint); one that succeeds holds exactly the events it reports.
func FuzzImport(f *testing.F) {
	ctx := context.Background()
	// One migrated database with the notes projections, copied for each
	// input: far faster than migrating a new one every time.
	tmpl := filepath.Join(f.TempDir(), "template.db")
	db, err := events.Open(ctx, tmpl, migrations.FS)
	if err != nil {
		f.Fatal(err)
	}
	reg := newNotesDomain(f, db).reg
	db.Close()
	template, err := os.ReadFile(tmpl)
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, in []byte) {
		path := filepath.Join(dir, "fuzz.db")
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(path + suffix)
		}
		if err := os.WriteFile(path, template, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := events.Open(ctx, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rep, ierr := events.Import(ctx, db, reg, bytes.NewReader(in))
		count := func(q string) int64 {
			var n int64
			if err := db.Read.QueryRowContext(ctx, q).Scan(&n); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			return n
		}
		evs := count(`SELECT COUNT(*) FROM events`)
		if ierr != nil {
			left := evs + count(`SELECT COUNT(*) FROM notes`) + count(`SELECT COUNT(*) FROM note_tags`) +
				count(`SELECT COUNT(*) FROM tallies`) + count(`SELECT COUNT(*) FROM projection_checkpoints`)
			if left != 0 {
				t.Fatalf("a refused import (%v) left %d rows behind", ierr, left)
			}
			return
		}
		if evs != rep.Events || !rep.Intact {
			t.Fatalf("import reported %+v, the log holds %d events", rep, evs)
		}
		live, err := events.Verify(ctx, db.Read)
		if err != nil || !live.Intact || live.Head != rep.Head {
			t.Fatalf("imported log: verify %+v, %v; import said head %+v", live, err, rep.Head)
		}
	})
}
