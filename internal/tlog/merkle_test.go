package tlog_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"braid/internal/tlog"
)

// TestTreeMatchesTransparencyDevMerkle is the property test against a
// second, independent implementation: transparency-dev/merkle's compact
// range, fed the leaf hashes of the braid hashes read back from the events
// table, has Braid's root at every size up to the end; and Braid's
// inclusion and consistency proofs verify with its proof package.
func TestTreeMatchesTransparencyDevMerkle(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(26, uint64(os.Getpid())))
	for _, size := range []int{1, 2, 7, 64, 65, 1 + rng.IntN(500), 1 + rng.IntN(500)} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			f := newFixture(t)
			for n := 0; n < size; {
				k := min(1+rng.IntN(9), size-n)
				f.add(t, k, false)
				n += k
			}
			rows, err := f.db.Read.Query(`SELECT hash FROM events ORDER BY position`)
			if err != nil {
				t.Fatal(err)
			}
			var braid [][32]byte
			for rows.Next() {
				var h []byte
				if err := rows.Scan(&h); err != nil {
					t.Fatal(err)
				}
				braid = append(braid, [32]byte(h))
			}
			rows.Close()
			rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
			r := rf.NewEmptyRange(0)
			roots := make([][]byte, len(braid)+1)
			for i, h := range braid {
				leaf := rfc6962.DefaultHasher.HashLeaf(h[:])
				if l := tlog.LeafHash(h); string(l[:]) != string(leaf) {
					t.Fatalf("leaf %d: Braid %x, transparency-dev %x", i, l, leaf)
				}
				if err := r.Append(leaf, nil); err != nil {
					t.Fatal(err)
				}
				if roots[i+1], err = r.GetRootHash(nil); err != nil {
					t.Fatal(err)
				}
			}
			head := f.tree.Head()
			if head.Size != int64(size) || string(head.Root[:]) != string(roots[size]) {
				t.Fatalf("size %d: Braid root %x (size %d), compact range %x", size, head.Root, head.Size, roots[size])
			}
			for range 8 {
				n := int64(1 + rng.IntN(size))
				pos := int64(1 + rng.IntN(int(n)))
				p, err := tlog.ProveInclusion(ctx, f.db.Read, n, pos)
				if err != nil {
					t.Fatal(err)
				}
				if string(p.Root[:]) != string(roots[n]) {
					t.Fatalf("root of size %d: Braid %x, compact range %x", n, p.Root, roots[n])
				}
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(pos-1), uint64(n), p.Leaf[:], bytesOf(p.Proof), roots[n]); err != nil {
					t.Fatalf("inclusion of %d in %d: %v", pos, n, err)
				}
				old := int64(1 + rng.IntN(int(n)))
				c, err := tlog.ProveConsistency(ctx, f.db.Read, old, n)
				if err != nil {
					t.Fatal(err)
				}
				if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(old), uint64(n), bytesOf(c.Proof), roots[old], roots[n]); err != nil {
					t.Fatalf("consistency %d → %d: %v", old, n, err)
				}
			}
		})
	}
}

func bytesOf(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}
