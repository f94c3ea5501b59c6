package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"braid/internal/anchor/anchortest"
	"braid/internal/events"
)

// The point of anchoring: a forger who rewrites the log's tail and
// recomputes every hash gets a braid that checks on its own, and is still
// caught, because the real witnesses' receipts name the old head.
func TestRewrittenTailIsCaughtByRealAnchors(t *testing.T) {
	path, head := seedLog(t, 40)
	tsa := anchortest.NewTSA(t, "Rewrite")
	rpc := anchortest.StartAnvil(t)
	key := filepath.Join(t.TempDir(), "anvil.key")
	if err := os.WriteFile(key, []byte(anchortest.AnvilKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"anchor", "--db", path, "--witness", "rfc3161", "--tsa-url", tsa.URL, "--tsa-roots", tsa.Roots},
		{"anchor", "--db", path, "--witness", "evm", "--rpc-url", rpc, "--key-file", key},
	} {
		if code, _, errb := runWeb(t, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb)
		}
	}
	// Both receipts check against the real witnesses.
	code, out, errb := runWeb(t, "verify", "--db", path, "--tsa-roots", tsa.Roots, "--rpc-url", rpc)
	if code != 0 || !strings.Contains(out, "receipt checked by rfc3161") || !strings.Contains(out, "receipt checked by evm") {
		t.Fatalf("verify of the anchored log: exit %d\n%s%s", code, out, errb)
	}

	// The forger rewrites everything from position 30 with fresh hashes.
	forged := tampered(t, path, func(db *sql.DB) {
		rewriteTail(t, db, 30, head.Position, func(e *events.Event) { e.Actor = "mallory" })
	})
	// The braid alone is intact...
	db, err := sql.Open("sqlite", "file:"+forged)
	if err != nil {
		t.Fatal(err)
	}
	r, err := events.Verify(t.Context(), db)
	db.Close()
	if err != nil || !r.Intact || r.Head.Hash == head.Hash {
		t.Fatalf("the forged braid: intact %v, head %x, err %v; want intact with a new head", r.Intact, r.Head.Hash, err)
	}
	// ...but verify names the anchors, exit 1, with or without checking receipts.
	for _, extra := range [][]string{nil, {"--tsa-roots", tsa.Roots, "--rpc-url", rpc}} {
		code, out, errb = runWeb(t, append([]string{"verify", "--db", forged}, extra...)...)
		want := "broken at position 40: anchor #1 (witness rfc3161) expected hash " + events.Hex(head.Hash)
		if code != 1 || !strings.HasPrefix(firstLine(out), want) || !strings.Contains(out, "anchor #2 (witness evm)") {
			t.Fatalf("verify %v of the forged log: exit %d, first line %q; want 1 and %q, and anchor #2 named\n%s%s", extra, code, firstLine(out), want, out, errb)
		}
	}

	// A forger who also rewrites the anchors table to the new head is
	// caught once the receipts themselves are checked: they were signed
	// (or mined) over the old head.
	forged2 := tampered(t, path, func(db *sql.DB) {
		rewriteTail(t, db, 30, head.Position, func(e *events.Event) { e.Actor = "mallory" })
		var h []byte
		if err := db.QueryRow(`SELECT hash FROM events WHERE position = ?`, head.Position).Scan(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE anchors SET hash = ?`, h); err != nil {
			t.Fatal(err)
		}
	})
	if code, out, _ := runWeb(t, "verify", "--db", forged2); code != 0 {
		t.Fatalf("forged anchors, receipts unchecked: exit %d, want 0 (only the receipts can tell)\n%s", code, out)
	}
	code, out, errb = runWeb(t, "verify", "--db", forged2, "--tsa-roots", tsa.Roots, "--rpc-url", rpc)
	if code != 1 || !strings.Contains(firstLine(out), "anchor #1 (witness rfc3161) receipt does not hold") || !strings.Contains(out, "anchor #2 (witness evm) receipt does not hold") {
		t.Fatalf("forged anchors, receipts checked: exit %d, want 1 naming both receipts\n%s%s", code, out, errb)
	}
}
