package main

import (
	"crypto/rand"
	"database/sql"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"braid/internal/events"
	"braid/internal/tlog"
)

// checkpointRoot reads the size and base64 root of a signed checkpoint.
func checkpointRoot(tb testing.TB, note string) (int64, string) {
	tb.Helper()
	lines := strings.SplitN(note, "\n", 4)
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		tb.Fatalf("checkpoint %q: %v", note, err)
	}
	return n, lines[2]
}

// The Must hold line: an operator who rewrites the tail with fresh hashes,
// rebuilds the tree, re-signs with the log's own key and empties the
// anchors table has a log that checks on its own, and is still caught by
// a checkpoint a user kept (verify --since, exit 1) and by a mirror (exit
// 1, naming both checkpoints).
func TestSinceAndMirrorCatchRewrittenTail(t *testing.T) {
	s := startServer(t)
	addr := strings.TrimPrefix(s.URL, "http://")
	b := newBrowser(t, s.URL)
	b.register("ada")
	b.open("one")
	b.open("two")
	n1 := int64(countEvents(t, s.DB))
	cp1, _ := waitCheckpoint(t, s.URL, n1)
	dir := t.TempDir()
	kept := filepath.Join(dir, "kept.checkpoint")
	pw := filepath.Join(dir, "password")
	os.WriteFile(kept, []byte(cp1), 0o600)
	os.WriteFile(pw, []byte("correct horse\n"), 0o600)
	_, root1 := checkpointRoot(t, cp1)

	// A mirror without a sign-in cannot read the entry bundles: exit 2.
	bare := filepath.Join(dir, "bare.db")
	if code, _, errb := runWeb(t, "mirror", s.URL, "--db", bare); code != 2 || !strings.Contains(errb, "--user NAME --password-file FILE") {
		t.Fatalf("mirror without sign-in: exit %d %s; want 2 asking for --user", code, errb)
	}
	// A wrong password is exit 2; a key that did not sign the checkpoint
	// is a refusal, exit 1; neither leaves a mirror behind.
	os.WriteFile(filepath.Join(dir, "wrong"), []byte("not it\n"), 0o600)
	if code, _, errb := runWeb(t, "mirror", s.URL, "--db", bare, "--user", "ada", "--password-file", filepath.Join(dir, "wrong")); code != 2 || !strings.Contains(errb, "sign in to "+s.URL+" as ada") {
		t.Fatalf("mirror with a wrong password: exit %d %s; want 2", code, errb)
	}
	_, otherKey, _ := note.GenerateKey(rand.Reader, tlog.DefaultOrigin(s.DB))
	if code, _, errb := runWeb(t, "mirror", s.URL, "--db", bare, "--vkey", otherKey, "--user", "ada", "--password-file", pw); code != 1 || !strings.Contains(errb, "refused: the source's checkpoint: the checkpoint is not signed by") {
		t.Fatalf("mirror with another key: exit %d %s; want 1", code, errb)
	}
	if n := countEvents(t, bare); n != 0 {
		t.Fatalf("refused pulls left %d events", n)
	}
	// The first pull pins the source's key from its /verify.
	copyDB := filepath.Join(dir, "copy.db")
	mirror := func(url string) (int, string, string) {
		return runWeb(t, "mirror", url, "--db", copyDB, "--user", "ada", "--password-file", pw)
	}
	code, out, errb := mirror(s.URL)
	if code != 0 || !strings.Contains(out, "pinned the source's log key") || !strings.Contains(out, "pulled "+strconv.FormatInt(n1, 10)+" events") {
		t.Fatalf("first pull: exit %d\n%s%s", code, out, errb)
	}

	// The copy served while the mirror keeps pulling into it.
	m := startServer(t, "--db", copyDB)
	b.open("three")
	b.open("four")
	n2 := int64(countEvents(t, s.DB))
	cp2, _ := waitCheckpoint(t, s.URL, n2)
	_, root2 := checkpointRoot(t, cp2)
	code, out, errb = mirror(s.URL)
	if code != 0 || !strings.Contains(out, "pulled "+strconv.FormatInt(n2-n1, 10)+" events") || !strings.Contains(out, "consistent with the one it held at size "+strconv.FormatInt(n1, 10)) {
		t.Fatalf("second pull: exit %d\n%s%s", code, out, errb)
	}
	if code, out, _ := mirror(s.URL); code != 0 || !strings.HasPrefix(out, "up to date") {
		t.Fatalf("third pull: exit %d %s; want up to date", code, out)
	}

	// The kept checkpoint checks against the live log and the copy.
	kc, ko, _ := runWeb(t, "key", "--db", s.DB)
	vkey := strings.TrimPrefix(firstLine(ko), "vkey ")
	if kc != 0 || vkey == firstLine(ko) {
		t.Fatalf("web key: exit %d %q", kc, ko)
	}
	for _, args := range [][]string{{"--db", s.DB}, {"--db", copyDB, "--vkey", vkey}} {
		code, out, errb = runWeb(t, append([]string{"verify", "--since", kept}, args...)...)
		if code != 0 || !strings.HasPrefix(out, "intact: "+strconv.FormatInt(n2, 10)+" events, head ") ||
			!strings.Contains(out, "consistent with checkpoint at size "+strconv.FormatInt(n1, 10)) ||
			!strings.Contains(out, "rehashed the "+strconv.FormatInt(n2-n1, 10)+" events after it") {
			t.Fatalf("verify --since %v: exit %d\n%s%s", args, code, out, errb)
		}
	}
	// The copy is a full Braid database: verify passes, projections built.
	if code, out, errb := runWeb(t, "verify", "--db", copyDB); code != 0 || !strings.Contains(out, "transparency tree: "+strconv.FormatInt(n2, 10)+" leaves") {
		t.Fatalf("verify of the copy: exit %d\n%s%s", code, out, errb)
	}
	s.stop()

	// The operator rewrites the tail from position n1-1 with fresh hashes,
	// empties the anchors and checkpoints, rebuilds the tree (replay) and
	// serves the forged log at the same address with the log's own key.
	forged := tampered(t, s.DB, func(db *sql.DB) {
		rewriteTail(t, db, n1-1, n2, func(e *events.Event) { e.OccurredAt = "2020-01-01T00:00:00.000000000Z" })
		mustExec(t, db, `DELETE FROM anchors`, `DELETE FROM checkpoints`, `DELETE FROM tlog_hashes`)
	})
	if code, out, errb := runWeb(t, "replay", "--db", forged); code != 0 {
		t.Fatalf("replay of the forged log: exit %d %s %s", code, out, errb)
	}
	// Alone, the forged log passes a full verify.
	if code, out, _ := runWeb(t, "verify", "--db", forged); code != 0 {
		t.Fatalf("full verify of the forged log: exit %d, want 0 (nothing in it can tell)\n%s", code, out)
	}
	// The kept checkpoint catches it: exit 1, its size and both roots.
	code, out, errb = runWeb(t, "verify", "--db", forged, "--since", kept, "--vkey", vkey)
	if code != 1 || !strings.Contains(out, "inconsistent with the checkpoint at size "+strconv.FormatInt(n1, 10)+" (root "+root1+")") ||
		!strings.Contains(out, "the log's tree at size "+strconv.FormatInt(n1, 10)+" has root ") || strings.Count(out, "=") < 2 {
		t.Fatalf("verify --since on the forged log: exit %d\n%s%s", code, out, errb)
	}

	f := startServer(t, "--db", forged, "--addr", addr, "--log-key", s.DB+".key", "--origin", tlog.DefaultOrigin(s.DB))
	fb := newBrowser(t, f.URL)
	fb.post("/login", fb.form("/login", "", url.Values{"username": {"ada"}, "password": {"correct horse"}}))
	fb.open("five")
	n3 := int64(countEvents(t, forged))
	cp3, _ := waitCheckpoint(t, f.URL, n3)
	_, root3 := checkpointRoot(t, cp3)
	code, out, errb = mirror(f.URL)
	want := "the source's checkpoint at size " + strconv.FormatInt(n3, 10) + " (root " + root3 + "), the copy's at size " + strconv.FormatInt(n2, 10) + " (root " + root2 + ")"
	if code != 1 || !strings.Contains(errb, "refused: not consistent: "+want) {
		t.Fatalf("mirror of the forged source: exit %d; want 1 with %q\n%s%s", code, want, out, errb)
	}
	if got := int64(countEvents(t, copyDB)); got != n2 {
		t.Fatalf("the refused pull changed the copy: %d events, want %d", got, n2)
	}
	// Pulling on a schedule stops at a refusal: a fork does not heal.
	if code, _, errb := runWeb(t, "mirror", f.URL, "--db", copyDB, "--every", "10ms"); code != 1 || !strings.Contains(errb, "refused: not consistent") {
		t.Fatalf("mirror --every of the forged source: exit %d %s; want 1", code, errb)
	}

	// Served, the copy is read-only with a banner naming the source.
	mb := newBrowser(t, m.URL)
	if a := mb.post("/login", mb.form("/login", "", url.Values{"username": {"ada"}, "password": {"correct horse"}})); a.status != http.StatusSeeOther {
		t.Fatalf("sign in on the mirror: %d %s", a.status, a.body)
	}
	page := mb.get("/tickets")
	if page.status != 200 || !strings.Contains(page.body, "Read-only mirror of "+s.URL) || !strings.Contains(page.body, "four") || !strings.Contains(page.body, "refused") {
		t.Fatalf("tickets on the mirror: %d\n%s", page.status, page.body)
	}
	a := mb.post("/tickets", mb.form("/tickets/new", "", url.Values{"title": {"six"}, "body": {"x"}}))
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "read-only mirror of "+s.URL) {
		t.Fatalf("a change on the mirror: %d, want 503\n%s", a.status, a.body)
	}
	if got := int64(countEvents(t, copyDB)); got != n2 {
		t.Fatalf("the mirror appended: %d events, want %d", got, n2)
	}
	if a := mb.get("/checkpoint"); a.status != 200 || a.body != cp2 {
		t.Fatalf("the mirror's /checkpoint: %d %q, want the source's %q", a.status, a.body, cp2)
	}
}
