package main

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"
)

// braidTreeHash is x/mod's TreeHash over the braid hashes read back from
// the events table, computed here with nothing of Braid's tree code.
func braidTreeHash(tb testing.TB, path string, size int64) xtlog.Hash {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT hash FROM events WHERE position <= ? ORDER BY position`, size)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var stored []xtlog.Hash
	r := xtlog.HashReaderFunc(func(idx []int64) ([]xtlog.Hash, error) {
		out := make([]xtlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	var n int64
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			tb.Fatal(err)
		}
		hs, err := xtlog.StoredHashes(n, h, r)
		if err != nil {
			tb.Fatal(err)
		}
		stored = append(stored, hs...)
		n++
	}
	if n != size {
		tb.Fatalf("events table has %d events up to %d", n, size)
	}
	root, err := xtlog.TreeHash(n, r)
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// waitCheckpoint polls GET /checkpoint until it is of size want.
func waitCheckpoint(tb testing.TB, base string, want int64) (string, http.Header) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/checkpoint")
		if err != nil {
			tb.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			lines := strings.SplitN(string(body), "\n", 3)
			if len(lines) == 3 && lines[1] == strconv.FormatInt(want, 10) {
				return string(body), resp.Header
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("GET /checkpoint: no checkpoint of size %d; last answer %d %q", want, resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCheckpointServed: the server makes its key at first start, `web key`
// prints the verifier key and origin, and GET /checkpoint serves a
// C2SP tlog-checkpoint that opens with that key and whose root is x/mod's
// TreeHash over the braid hashes.
func TestCheckpointServed(t *testing.T) {
	s := startServer(t)
	keyFile := s.DB + ".key"
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file %s: %v (mode %v), want mode 0600", keyFile, err, st)
	}
	code, out, errb := runWeb(t, "key", "--db", s.DB)
	if code != 0 {
		t.Fatalf("web key: exit %d, %s", code, errb)
	}
	var vkey, origin string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(l, " ")
		switch k {
		case "vkey":
			vkey = v
		case "origin":
			origin = v
		}
	}
	if origin != "braid.local/braid" || !strings.HasPrefix(vkey, origin+"+") {
		t.Fatalf("web key printed %q", out)
	}

	b := newBrowser(t, s.URL)
	b.register("ada")
	b.open("Engine stalls")
	b.open("Card reader jams")
	n := int64(countEvents(t, s.DB))
	text, hdr := waitCheckpoint(t, s.URL, n)
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q, want text/plain", ct)
	}

	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Open([]byte(text), note.VerifierList(v))
	if err != nil {
		t.Fatalf("note.Open with the printed vkey: %v\n%s", err, text)
	}
	// The contract: origin line, decimal size, base64 root, a blank line,
	// signature lines.
	body, sigs, ok := strings.Cut(text, "\n\n")
	lines := strings.Split(body, "\n")
	if !ok || msg.Text != body+"\n" || len(lines) != 3 || lines[0] != origin || lines[1] != strconv.FormatInt(n, 10) {
		t.Fatalf("checkpoint %q", text)
	}
	for _, l := range strings.Split(strings.TrimSuffix(sigs, "\n"), "\n") {
		if !strings.HasPrefix(l, "— "+origin+" ") {
			t.Fatalf("signature line %q", l)
		}
	}
	// x/mod's own parser reads size and root once the origin line is its own.
	tree, err := xtlog.ParseTree([]byte("go.sum database tree\n" + lines[1] + "\n" + lines[2] + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := braidTreeHash(t, s.DB, n); tree.N != n || tree.Hash != want {
		t.Fatalf("checkpoint: size %d root %s; x/mod TreeHash over the braid hashes: %s", tree.N, tree.Hash, want)
	}

	// /verify shows the origin, the key and the latest checkpoint.
	page := b.get("/verify")
	for _, want := range []string{origin, vkey, lines[2], `id="checkpoint-size">` + lines[1] + "<"} {
		if !strings.Contains(page.body, want) {
			t.Fatalf("/verify does not show %q", want)
		}
	}
	a := b.do("GET", "/verify", nil, "Accept", "application/json")
	var vs struct {
		Checkpoint struct {
			Origin, VKey, Root string
			Size               int64
		} `json:"checkpoint"`
	}
	if err := json.Unmarshal([]byte(a.body), &vs); err != nil || vs.Checkpoint.VKey != vkey || vs.Checkpoint.Root != lines[2] {
		t.Fatalf("/verify JSON checkpoint: %+v, %v in %s", vs.Checkpoint, err, a.body)
	}

	// Every checkpoint is kept; a restart with another origin is refused.
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	code, _, errb = runWeb(t, "serve", "--db", s.DB, "--addr", "127.0.0.1:0", "--origin", "example.com/other")
	if code != 2 || !strings.Contains(errb, "braid.local/braid") {
		t.Fatalf("serve with another origin: exit %d, %s", code, errb)
	}
}

// TestVerifyChecksTree: `web verify` recomputes the tree from the braid
// hashes and names the first wrong stored hash; `web replay` rebuilds it;
// `web import` builds it.
func TestVerifyChecksTree(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t, s.URL)
	b.register("ada")
	for _, title := range []string{"one", "two", "three", "four"} {
		b.open(title)
	}
	s.stop()
	n := int64(countEvents(t, s.DB))

	code, out, errb := runWeb(t, "verify", "--db", s.DB, "--json")
	var rep struct {
		Intact bool
		Tree   struct {
			Size            int64
			Root            string
			OK              bool
			FirstWrongIndex *int64 `json:"first_wrong_index"`
			Problem         string
		}
		Failure *struct {
			Position int64
			Reason   string
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || !rep.Intact || !rep.Tree.OK || rep.Tree.Size != n {
		t.Fatalf("verify: exit %d %s %s", code, out, errb)
	}
	root := braidTreeHash(t, s.DB, n)
	if rep.Tree.Root != base64.StdEncoding.EncodeToString(root[:]) {
		t.Fatalf("verify tree root %s, x/mod %x", rep.Tree.Root, root)
	}

	// Stored index 3 is the leaf of the event at position 3 (x/mod:
	// StoredHashIndex(0, 2) = 3).
	db, err := sql.Open("sqlite", "file:"+s.DB)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `UPDATE tlog_hashes SET hash = zeroblob(32) WHERE id = 3`)
	db.Close()
	code, out, _ = runWeb(t, "verify", "--db", s.DB, "--json")
	rep.Tree.FirstWrongIndex, rep.Failure = nil, nil
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.Intact || rep.Tree.OK ||
		rep.Tree.FirstWrongIndex == nil || *rep.Tree.FirstWrongIndex != 3 || rep.Failure == nil || rep.Failure.Position != 3 {
		t.Fatalf("verify after changing stored hash 3: exit %d %s", code, out)
	}
	code, out, _ = runWeb(t, "verify", "--db", s.DB)
	if code != 1 || !strings.Contains(out, "stored hash 3") {
		t.Fatalf("verify text after changing stored hash 3: exit %d %s", code, out)
	}

	code, out, errb = runWeb(t, "replay", "--db", s.DB)
	if code != 0 || !strings.Contains(out, "rebuilt the transparency tree: "+strconv.FormatInt(n, 10)+" leaves, root "+base64.StdEncoding.EncodeToString(root[:])) {
		t.Fatalf("replay: exit %d %s %s", code, out, errb)
	}
	if code, out, _ := runWeb(t, "verify", "--db", s.DB); code != 0 || !strings.Contains(out, "transparency tree: "+strconv.FormatInt(n, 10)+" leaves") {
		t.Fatalf("verify after replay: exit %d %s", code, out)
	}

	// Export, import into a new database: the tree is there and the same.
	exp := filepath.Join(t.TempDir(), "braid.jsonl")
	if code, _, errb := runWeb(t, "export", "--db", s.DB, "-o", exp); code != 0 {
		t.Fatalf("export: %s", errb)
	}
	copyDB := filepath.Join(t.TempDir(), "copy.db")
	if code, _, errb := runWeb(t, "import", "--db", copyDB, exp); code != 0 {
		t.Fatalf("import: %s", errb)
	}
	var copyRep struct {
		Tree struct {
			Size int64
			Root string
			OK   bool
		}
	}
	code, out, _ = runWeb(t, "verify", "--db", copyDB, "--json")
	if err := json.Unmarshal([]byte(out), &copyRep); err != nil || code != 0 || !copyRep.Tree.OK || copyRep.Tree.Size != n || copyRep.Tree.Root != rep.Tree.Root {
		t.Fatalf("verify of the imported copy: exit %d %s", code, out)
	}
}

func TestKeyWithoutKey(t *testing.T) {
	path, _ := seedLog(t, 4)
	code, _, errb := runWeb(t, "key", "--db", path)
	if code != 2 || !strings.Contains(errb, "no log key at "+path+".key") {
		t.Fatalf("web key with no key: exit %d, %q", code, errb)
	}
}
