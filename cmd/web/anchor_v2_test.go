package main

import (
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"braid/internal/anchor/anchortest"
)

// TestAnchorsCommitToTreeRoot: with a transparency tree, the RFC 3161
// imprint is the v2 digest of the head and the tree root (checked by
// openssl with a digest computed here from the documented text), and the
// EVM transaction carries braid2 with the root; verify checks both
// receipts with the real TSA and chain. A receipt made before the log had
// a tree still checks once it has one.
func TestAnchorsCommitToTreeRoot(t *testing.T) {
	tsa := anchortest.NewTSA(t, "V2")
	rpc := anchortest.StartAnvil(t)
	key := filepath.Join(t.TempDir(), "anvil.key")
	if err := os.WriteFile(key, []byte(anchortest.AnvilKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t)
	b := newBrowser(t, s.URL)
	b.register("ada")
	b.open("one")
	s.stop()
	n := int64(countEvents(t, s.DB))
	for _, args := range [][]string{
		{"anchor", "--db", s.DB, "--witness", "rfc3161", "--tsa-url", tsa.URL, "--tsa-roots", tsa.Roots},
		{"anchor", "--db", s.DB, "--witness", "evm", "--rpc-url", rpc, "--key-file", key},
	} {
		code, out, errb := runWeb(t, args...)
		if code != 0 || !(strings.Contains(out, "imprint=v2 ") || strings.Contains(out, "payload=braid2 ")) {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errb)
		}
	}
	db, err := sql.Open("sqlite", "file:"+s.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var head, receipt []byte
	if err := db.QueryRow(`SELECT hash FROM events WHERE position = ?`, n).Scan(&head); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT receipt FROM anchors WHERE witness = 'rfc3161'`).Scan(&receipt); err != nil {
		t.Fatal(err)
	}
	root := braidTreeHash(t, s.DB, n)
	text := fmt.Sprintf("braid anchor v2\n%d\n%s\n%s\n", n, hex.EncodeToString(head), base64.StdEncoding.EncodeToString(root[:]))
	digest := sha256.Sum256([]byte(text))
	tsr := filepath.Join(t.TempDir(), "r.tsr")
	if err := os.WriteFile(tsr, receipt, 0o600); err != nil {
		t.Fatal(err)
	}
	out := anchortest.Openssl(t, tsa.Dir, "ts", "-verify", "-digest", hex.EncodeToString(digest[:]), "-in", tsr, "-CAfile", tsa.Roots)
	if !strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl ts -verify with the v2 digest: %s", out)
	}
	if out, err := anchortest.RunOpenssl(tsa.Dir, "ts", "-verify", "-digest", hex.EncodeToString(head), "-in", tsr, "-CAfile", tsa.Roots); err == nil {
		t.Fatalf("the v2 receipt verifies against the bare head hash: %s", out)
	}
	code, out, errb := runWeb(t, "verify", "--db", s.DB, "--tsa-roots", tsa.Roots, "--rpc-url", rpc)
	if code != 0 || !strings.Contains(out, "receipt checked by rfc3161") || !strings.Contains(out, "receipt checked by evm") {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errb)
	}

	// A v1 receipt (a log without a tree) still checks after replay built
	// the tree.
	old, _ := seedLog(t, 8)
	if code, out, errb := runWeb(t, "anchor", "--db", old, "--witness", "rfc3161", "--tsa-url", tsa.URL, "--tsa-roots", tsa.Roots); code != 0 || strings.Contains(out, "imprint=") {
		t.Fatalf("anchor without a tree: exit %d\n%s%s", code, out, errb)
	}
	if code, out, errb := runWeb(t, "replay", "--db", old); code != 0 {
		t.Fatalf("replay: exit %d\n%s%s", code, out, errb)
	}
	if code, out, errb := runWeb(t, "verify", "--db", old, "--tsa-roots", tsa.Roots); code != 0 || !strings.Contains(out, "receipt checked by rfc3161") {
		t.Fatalf("verify of a v1 receipt beside a tree: exit %d\n%s%s", code, out, errb)
	}
}
