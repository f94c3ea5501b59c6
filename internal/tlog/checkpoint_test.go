package tlog_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"braid/internal/events"
	"braid/internal/tlog"
)

func TestDefaultOrigin(t *testing.T) {
	for path, want := range map[string]string{
		"braid.db":             "braid.local/braid",
		"/var/lib/x/team.db":   "braid.local/team",
		"data/my log+1.sqlite": "braid.local/mylog1",
		".db":                  "braid.local/braid",
	} {
		if got := tlog.DefaultOrigin(path); got != want {
			t.Errorf("DefaultOrigin(%q) = %q, want %q", path, got, want)
		}
		if err := tlog.CheckOrigin(tlog.DefaultOrigin(path)); err != nil {
			t.Error(err)
		}
	}
	for _, bad := range []string{"", "a b", "a+b", "é", strings.Repeat("a", 256)} {
		if tlog.CheckOrigin(bad) == nil {
			t.Errorf("CheckOrigin(%q) accepted", bad)
		}
	}
}

// TestKeyFile: the key is made once with mode 0600, read back the same,
// its verifier key opens what it signs, and another origin is refused.
func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "braid.db.key")
	k, created, err := tlog.LoadOrCreateKey(path, "braid.local/braid")
	if err != nil || !created {
		t.Fatalf("first load: created=%v err=%v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v, %v", st.Mode(), err)
	}
	k2, created, err := tlog.LoadOrCreateKey(path, "braid.local/braid")
	if err != nil || created || k2.VKey != k.VKey {
		t.Fatalf("second load: created=%v err=%v vkey %q, first %q", created, err, k2.VKey, k.VKey)
	}
	if !strings.HasPrefix(k.VKey, "braid.local/braid+") || k.Origin != "braid.local/braid" {
		t.Fatalf("vkey %q origin %q", k.VKey, k.Origin)
	}
	if _, _, err := tlog.LoadOrCreateKey(path, "braid.local/other"); err == nil || !strings.Contains(err.Error(), "braid.local/braid") {
		t.Fatalf("another origin with the same key: %v", err)
	}

	s := &tlog.Signer{Key: k}
	h := tlog.Head{Size: 3, Root: xtlog.RecordHash([]byte("x"))}
	msg, err := s.Sign(h)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(k.VKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		t.Fatalf("note.Open with the printed vkey: %v\n%s", err, msg)
	}
	origin, got, err := tlog.ParseCheckpoint([]byte(n.Text))
	if err != nil || origin != "braid.local/braid" || got != h {
		t.Fatalf("ParseCheckpoint: %q %+v %v", origin, got, err)
	}
	// The verifier key is derived from the signing key: try many keys, so
	// that some hold a '+' in their base64.
	for i := range 40 {
		k, _, err := tlog.LoadOrCreateKey(filepath.Join(t.TempDir(), "k"), "braid.local/many")
		if err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		msg, _ := (&tlog.Signer{Key: k}).Sign(h)
		v, err := note.NewVerifier(k.VKey)
		if err == nil {
			_, err = note.Open(msg, note.VerifierList(v))
		}
		if err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	// Another key's verifier refuses it.
	_, other, _ := note.GenerateKey(nil, "braid.local/braid")
	ov, _ := note.NewVerifier(other)
	if _, err := note.Open(msg, note.VerifierList(ov)); err == nil {
		t.Fatal("a checkpoint opened with another key")
	}
}

// TestSignerKeepsCheckpoints: the signer signs the head at start, then
// once the tree grows, at most once per Every, keeping each.
func TestSignerKeepsCheckpoints(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFixture(t)
	k, _, err := tlog.LoadOrCreateKey(filepath.Join(t.TempDir(), "k"), "braid.local/test")
	if err != nil {
		t.Fatal(err)
	}
	s := &tlog.Signer{Tree: f.tree, Key: k, Store: f.w.Exclusive, Every: 50 * time.Millisecond}
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, -1) }()
	defer func() { cancel(); <-done }()

	wait := func(size int64) tlog.Checkpoint {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, ok, err := tlog.Latest(ctx, f.db.Read)
			if err != nil {
				t.Fatal(err)
			}
			if ok && c.Size == size {
				return c
			}
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint of size %d (latest %+v, %v)", size, c, ok)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	c0 := wait(0)
	if c0.Root != tlog.EmptyRoot {
		t.Fatalf("empty checkpoint root %s", c0.Root)
	}
	for range 5 {
		f.add(t, 3, false)
	}
	c := wait(15)
	_, _, root := independent(t, f.db)
	if c.Root != root {
		t.Fatalf("checkpoint root %s, x/mod %s", c.Root, root)
	}
	v, _ := note.NewVerifier(k.VKey)
	n, err := note.Open([]byte(c.Note), note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	if want := string(tlog.FormatCheckpoint("braid.local/test", tlog.Head{Size: 15, Root: root})); n.Text != want {
		t.Fatalf("note text %q, want %q", n.Text, want)
	}
	var count int
	if err := f.db.Read.QueryRow(`SELECT COUNT(*) FROM checkpoints`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	// One at size 0, then at most one per 50 ms while 5 commands ran.
	if count < 2 || count > 7 {
		t.Fatalf("%d checkpoints kept", count)
	}
}

func BenchmarkSignCheckpoint(b *testing.B) {
	k, _, err := tlog.LoadOrCreateKey(filepath.Join(b.TempDir(), "k"), "braid.local/bench")
	if err != nil {
		b.Fatal(err)
	}
	s := &tlog.Signer{Key: k}
	h := tlog.Head{Size: 1 << 20, Root: xtlog.RecordHash([]byte("x"))}
	for b.Loop() {
		if _, err := s.Sign(h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignAndStore is signing plus keeping the checkpoint through the
// writer (one Exclusive: its own commit when nothing else is queued).
func BenchmarkSignAndStore(b *testing.B) {
	f := newFixture(b)
	k, _, err := tlog.LoadOrCreateKey(filepath.Join(b.TempDir(), "k"), "braid.local/bench")
	if err != nil {
		b.Fatal(err)
	}
	s := &tlog.Signer{Tree: f.tree, Key: k, Store: f.w.Exclusive}
	ctx := context.Background()
	var n int64
	for b.Loop() {
		n++
		if err := s.SignAndStore(ctx, tlog.Head{Size: n, Root: xtlog.RecordHash([]byte("x"))}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTreeHook is the tree's own work per event inside the writer's
// transaction: the leaf hash, the frontier, and its share of the
// multi-row INSERT of stored hashes, flushed every 256 events (a full
// group commit); no fsync, which the benchmark of the writer includes.
func BenchmarkTreeHook(b *testing.B) {
	f := newFixture(b)
	f.w.Close() // the benchmark drives the tree on the write connection itself
	ctx := context.Background()
	conn, err := f.db.Write.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	tree := tlog.New()
	if err := tree.Open(ctx, f.db.Read, conn, events.Head{}); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		b.Fatal(err)
	}
	defer conn.ExecContext(ctx, `ROLLBACK`)
	e := events.Event{}
	for b.Loop() {
		e.Position++
		e.Hash[0], e.Hash[1], e.Hash[2] = byte(e.Position), byte(e.Position>>8), byte(e.Position>>16)
		if err := tree.Append(&e); err != nil {
			b.Fatal(err)
		}
		if e.Position%256 == 0 {
			if err := tree.Flush(ctx, conn); err != nil {
				b.Fatal(err)
			}
		}
	}
}
