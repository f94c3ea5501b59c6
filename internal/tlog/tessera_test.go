package tlog_test

import (
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"braid/internal/tlog"
)

// TestTreeMatchesTessera: transparency-dev/tessera's POSIX driver, a
// complete tlog-tiles log written by people who are not us, fed the braid
// hashes of a Braid log as its entries (leaf = SHA-256(0x00 || braid
// hash), Braid's leaf rule), publishes at every size the root Braid's
// stored hashes give.
func TestTreeMatchesTessera(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rng := mrand.New(mrand.NewPCG(6962, uint64(os.Getpid())))
	f := newFixture(t)
	skey, vkey, err := note.GenerateKey(rand.Reader, "tessera.test/braid")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	driver, err := posix.New(ctx, posix.Config{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	app, shutdown, reader, err := tessera.NewAppender(ctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(signer).WithBatching(256, 10*time.Millisecond).WithCheckpointInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(ctx)
	awaiter := tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 20*time.Millisecond)

	fed := int64(0)
	for _, grow := range []int{1, 1 + rng.IntN(40), 1 + rng.IntN(300), 1 + rng.IntN(700)} {
		for n := 0; n < grow; {
			k := min(1+rng.IntN(9), grow-n)
			f.add(t, k, false)
			n += k
		}
		size := f.tree.Head().Size
		rows, err := f.db.Read.Query(`SELECT hash FROM events WHERE position > ? ORDER BY position`, fed)
		if err != nil {
			t.Fatal(err)
		}
		var last tessera.IndexFuture
		for rows.Next() {
			var h []byte
			if err := rows.Scan(&h); err != nil {
				t.Fatal(err)
			}
			last = app.Add(ctx, tessera.NewEntry(h))
			fed++
		}
		rows.Close()
		idx, cp, err := awaiter.Await(ctx, last)
		if err != nil {
			t.Fatal(err)
		}
		if idx.Index != uint64(size-1) {
			t.Fatalf("tessera put the last braid hash at index %d, Braid at %d", idx.Index, size-1)
		}
		n, err := note.Open(cp, note.VerifierList(verifier))
		if err != nil {
			t.Fatal(err)
		}
		_, th, err := tlog.ParseCheckpoint([]byte(n.Text))
		if err != nil {
			t.Fatal(err)
		}
		if th.Size < size {
			t.Fatalf("tessera published size %d, want at least %d", th.Size, size)
		}
		braidRoot, err := xtlog.TreeHash(th.Size, tlog.Reader{Ctx: ctx, Q: f.db.Read})
		if err != nil {
			t.Fatal(err)
		}
		if braidRoot != th.Root {
			t.Fatalf("size %d: tessera's root %s, Braid's %s", th.Size, th.Root, braidRoot)
		}
		t.Logf("size %d: same root %s", th.Size, th.Root)
	}
}
