package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"
)

// verify --since refuses what it must, with the right exit code: another
// key's checkpoint, an event after the checkpoint changed in place, a log
// cut back; and reads the checkpoint from standard input.
func TestVerifySinceRefuses(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t, s.URL)
	b.register("ada")
	b.open("one")
	n1 := int64(countEvents(t, s.DB))
	cp1, _ := waitCheckpoint(t, s.URL, n1)
	b.open("two")
	n2 := int64(countEvents(t, s.DB))
	waitCheckpoint(t, s.URL, n2)
	s.stop()
	dir := t.TempDir()
	kept := filepath.Join(dir, "kept")
	os.WriteFile(kept, []byte(cp1), 0o600)

	var out, errb strings.Builder
	code := run(context.Background(), []string{"verify", "--db", s.DB, "--since", "-", "--json"}, func(string) string { return "" },
		strings.NewReader(cp1), &out, &errb)
	var got struct {
		Intact bool
		Events int64
		Since  struct {
			Size     int64
			Rehashed int64
		}
	}
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil || code != 0 || !got.Intact || got.Events != n2 || got.Since.Size != n1 || got.Since.Rehashed != n2-n1 {
		t.Fatalf("verify --since - --json: exit %d %v\n%s%s", code, err, out.String(), errb.String())
	}

	// Signed by another key with the same name: refused, exit 1.
	skey, vkey, _ := note.GenerateKey(rand.Reader, strings.SplitN(cp1, "\n", 2)[0])
	signer, _ := note.NewSigner(skey)
	body, _, _ := strings.Cut(cp1, "\n\n")
	other, _ := note.Sign(&note.Note{Text: body + "\n"}, signer)
	forgedCP := filepath.Join(dir, "other")
	os.WriteFile(forgedCP, other, 0o600)
	if code, out, errb := runWeb(t, "verify", "--db", s.DB, "--since", forgedCP); code != 1 || !strings.Contains(errb, "not signed by") {
		t.Fatalf("another key's checkpoint: exit %d %s%s; want 1", code, out, errb)
	}
	// With that key given, it opens: the key is what is trusted.
	if code, out, errb := runWeb(t, "verify", "--db", s.DB, "--since", forgedCP, "--vkey", vkey); code != 0 {
		t.Fatalf("with its own key: exit %d %s%s", code, out, errb)
	}
	// No such file, or not a checkpoint: could not run / refused.
	if code, _, _ := runWeb(t, "verify", "--db", s.DB, "--since", filepath.Join(dir, "none")); code != 2 {
		t.Fatalf("missing checkpoint file: exit %d, want 2", code)
	}
	os.WriteFile(filepath.Join(dir, "junk"), []byte("hello\n"), 0o600)
	if code, _, _ := runWeb(t, "verify", "--db", s.DB, "--since", filepath.Join(dir, "junk")); code != 1 {
		t.Fatalf("junk checkpoint: exit %d, want 1", code)
	}

	// An event after the checkpoint changed in place: broken there.
	edited := tampered(t, s.DB, func(db *sql.DB) {
		mustExec(t, db, `UPDATE events SET actor = 'mallory' WHERE position = `+strconv.FormatInt(n2, 10))
	})
	code2, out2, _ := runWeb(t, "verify", "--db", edited, "--since", kept, "--log-key", s.DB+".key")
	if code2 != 1 || !strings.HasPrefix(out2, "broken at position "+strconv.FormatInt(n2, 10)+": hash mismatch") {
		t.Fatalf("event after the checkpoint edited: exit %d %q", code2, out2)
	}
	// The log cut back before the checkpoint: inconsistent.
	cut := tampered(t, s.DB, func(db *sql.DB) {
		mustExec(t, db, `DELETE FROM events WHERE position >= `+strconv.FormatInt(n1, 10))
	})
	code2, out2, _ = runWeb(t, "verify", "--db", cut, "--since", kept, "--log-key", s.DB+".key")
	if code2 != 1 || !strings.Contains(out2, "inconsistent with the checkpoint at size "+strconv.FormatInt(n1, 10)) || !strings.Contains(out2, "cut back") {
		t.Fatalf("log cut back: exit %d %q", code2, out2)
	}
}

// /verify checks the tree too, incrementally: the stored tree changed
// behind the running site is caught by the next run after an append,
// which reads only the new events and O(log n) stored hashes.
func TestVerifyPageChecksTreeSinceLastRun(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t, s.URL)
	b.register("ada")
	b.open("one")
	n := int64(countEvents(t, s.DB))
	var st struct {
		Intact bool
		Tree   *struct {
			Size int64
			OK   bool
		}
		Failure *struct {
			Position int64
			Reason   string
		}
	}
	a := b.do("GET", "/verify", nil, "Accept", "application/json")
	if err := json.Unmarshal([]byte(a.body), &st); err != nil || !st.Intact || st.Tree == nil || !st.Tree.OK || st.Tree.Size != n {
		t.Fatalf("/verify: %d %s", a.status, a.body)
	}
	if page := b.get("/verify"); !strings.Contains(page.body, `<span id="tree-size">`+strconv.FormatInt(n, 10)+`</span> leaves`) {
		t.Fatalf("/verify does not show the tree checked:\n%s", page.body)
	}
	db, err := sql.Open("sqlite", "file:"+s.DB)
	if err != nil {
		t.Fatal(err)
	}
	// Every stored hash of the tree the last run verified (the run reads
	// only the subtree roots of that tree, O(log n) of them).
	mustExec(t, db, `UPDATE tlog_hashes SET hash = zeroblob(32) WHERE id < `+strconv.FormatInt(xtlog.StoredHashIndex(0, n), 10))
	db.Close()
	b.open("two")
	a = b.do("GET", "/verify", nil, "Accept", "application/json")
	st.Failure = nil
	if err := json.Unmarshal([]byte(a.body), &st); err != nil || st.Intact || st.Failure == nil || !strings.Contains(st.Failure.Reason, "transparency tree: the log's tree at size "+strconv.FormatInt(n, 10)) {
		t.Fatalf("/verify after a stored hash changed: %d %s", a.status, a.body)
	}
}
