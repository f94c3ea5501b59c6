package anchor

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	xtlog "golang.org/x/mod/sumdb/tlog"

	"braid/internal/events"
	"braid/internal/tlog"
)

// RootFunc returns the root of the log's transparency tree of size leaves,
// and false when the log has no tree of that size (a database from before
// the tree).
type RootFunc func(ctx context.Context, size int64) (tlog.Hash, bool, error)

// TreeRoot is the RootFunc of the stored hashes in q.
func TreeRoot(q events.Querier) RootFunc {
	return func(ctx context.Context, size int64) (tlog.Hash, bool, error) {
		var n int
		err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM tlog_hashes WHERE id = ?`, xtlog.StoredHashIndex(0, size-1)).Scan(&n)
		if err != nil && strings.Contains(err.Error(), "no such table") {
			return tlog.Hash{}, false, nil
		}
		if err != nil {
			return tlog.Hash{}, false, fmt.Errorf("tree root at %d: %w", size, err)
		}
		if n == 0 || size < 1 {
			return tlog.Hash{}, false, nil
		}
		h, err := xtlog.TreeHash(size, tlog.Reader{Ctx: ctx, Q: q})
		if err != nil {
			return tlog.Hash{}, false, fmt.Errorf("tree root at %d: %w", size, err)
		}
		return h, true, nil
	}
}

// DigestV2 is what the RFC 3161 anchor timestamps since the log has a
// transparency tree: SHA-256 of the four lines
//
//	braid anchor v2
//	<position in decimal>
//	<braid hash at position, 64 lowercase hex>
//	<root of the tree of position leaves, standard base64>
//
// each ended by "\n", so it commits to the braid head and to the tree
// root at the same size (docs/anchoring.md; `printf … | sha256sum`).
func DigestV2(head events.Head, root tlog.Hash) [32]byte {
	return sha256.Sum256(DigestV2Text(head, root))
}

// DigestV2Text is the text DigestV2 hashes.
func DigestV2Text(head events.Head, root tlog.Hash) []byte {
	return fmt.Appendf(nil, "braid anchor v2\n%d\n%s\n%s\n", head.Position, hexHash(head.Hash), base64.StdEncoding.EncodeToString(root[:]))
}

// rootAt is the tree root at head's position through f, false when f is
// nil or the log has no tree of that size.
func rootAt(ctx context.Context, f RootFunc, head events.Head) (tlog.Hash, bool, error) {
	if f == nil {
		return tlog.Hash{}, false, nil
	}
	return f(ctx, head.Position)
}

// recordedRoot is the tree root a v2 receipt's details name; Check never
// trusts it (it recomputes the root), the pages use it to show what to
// check by hand.
func recordedRoot(a Anchor) (tlog.Hash, bool) {
	b, err := base64.StdEncoding.DecodeString(a.Receipt.Details["root"])
	if err != nil || len(b) != len(tlog.Hash{}) {
		return tlog.Hash{}, false
	}
	return tlog.Hash(b), true
}

// Imprint is what an RFC 3161 anchor's token should be over: the v2
// digest and the text it hashes when the receipt says v2, else the head
// hash and "".
func Imprint(a Anchor) ([32]byte, string) {
	if root, ok := recordedRoot(a); ok && a.Receipt.Details["imprint"] == "v2" {
		return DigestV2(a.Head, root), string(DigestV2Text(a.Head, root))
	}
	return a.Head.Hash, ""
}

// ExpectedEVMPayload is the transaction data an EVM anchor should carry.
func ExpectedEVMPayload(a Anchor) []byte {
	if root, ok := recordedRoot(a); ok && a.Receipt.Details["payload"] == EVMPrefixV2 {
		return EVMPayloadV2(a.Head, root)
	}
	return EVMPayload(a.Head)
}
