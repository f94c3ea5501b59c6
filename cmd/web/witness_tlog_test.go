package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"braid/internal/anchor"
	"braid/internal/events"
	"braid/internal/tlog"
)

// witnessBin finds an outside witness program on PATH or in $(go env
// GOPATH)/bin (where `make deps` installs it). Without it the test skips,
// unless CI is set: there a missing witness is a failure.
func witnessBin(tb testing.TB, name string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s is not installed and CI is set: run `make deps`", name)
	}
	tb.Skipf("%s is not installed (run `make deps`); skipping the test with a real witness", name)
	return ""
}

// freeAddr returns a loopback address with a free port.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startProc starts cmd, stops it (SIGKILL by its own pid) at cleanup and
// returns its captured stderr.
func startProc(tb testing.TB, cmd *exec.Cmd) *capped {
	tb.Helper()
	logs := &capped{}
	cmd.Stderr, cmd.Stdout = logs, logs
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return logs
}

// waitHTTP waits until something answers HTTP at base.
func waitHTTP(tb testing.TB, base string, logs *capped) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("witness at %s did not start: %v\n%s", base, err, logs)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

type realWitness struct {
	Name, URL, VKey string
	State           string // litewitness: its SQLite state
}

// startLitewitness runs litewitness on 127.0.0.1 with a fresh Ed25519 key
// in its own ssh-agent, the log added by rows in its SQLite state.
func startLitewitness(tb testing.TB, origin, logVKey string) realWitness {
	tb.Helper()
	bin := witnessBin(tb, "litewitness")
	dir, err := os.MkdirTemp("", "lw") // short: a unix socket path
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	key, sock := filepath.Join(dir, "key"), filepath.Join(dir, "agent.sock")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		tb.Fatalf("ssh-keygen: %v %s", err, out)
	}
	agentLogs := startProc(tb, exec.Command("ssh-agent", "-D", "-a", sock))
	for i := 0; ; i++ {
		add := exec.Command("ssh-add", key)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		out, err := add.CombinedOutput()
		if err == nil {
			break
		}
		if i > 100 {
			tb.Fatalf("ssh-add: %v %s %s", err, out, agentLogs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fp, err := exec.Command("ssh-keygen", "-lf", key+".pub").Output()
	if err != nil {
		tb.Fatal(err)
	}
	state := filepath.Join(dir, "litewitness.db")
	db, err := sql.Open("sqlite", "file:"+state)
	if err != nil {
		tb.Fatal(err)
	}
	empty, _ := xtlog.TreeHash(0, nil)
	mustExec(tb, db,
		`CREATE TABLE log (origin TEXT PRIMARY KEY, tree_size INTEGER NOT NULL, tree_hash TEXT NOT NULL)`,
		`CREATE TABLE key (origin TEXT NOT NULL, key TEXT NOT NULL, FOREIGN KEY(origin) REFERENCES log(origin))`,
		`CREATE TABLE bastion (origin TEXT NOT NULL, bastion TEXT NOT NULL, FOREIGN KEY(origin) REFERENCES log(origin))`)
	if _, err := db.Exec(`INSERT INTO log (origin, tree_size, tree_hash) VALUES (?, 0, ?)`, origin, base64.StdEncoding.EncodeToString(empty[:])); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO key (origin, key) VALUES (?, ?)`, origin, logVKey); err != nil {
		tb.Fatal(err)
	}
	db.Close()
	addr := freeAddr(tb)
	name := "witness.test/lite"
	logs := startProc(tb, exec.Command(bin, "-name", name, "-db", state, "-ssh-agent", sock,
		"-key", strings.Fields(string(fp))[1], "-listen", addr))
	w := realWitness{Name: name, URL: "http://" + addr, State: state}
	waitHTTP(tb, w.URL, logs)
	m := regexp.MustCompile(`vkey=(\S+)`).FindStringSubmatch(logs.String())
	if m == nil {
		tb.Fatalf("litewitness printed no verifier key:\n%s", logs)
	}
	w.VKey = m[1]
	return w
}

// startOmniwitness runs omniwitness on 127.0.0.1 with a fresh note key,
// the log added by --additional_logs, state in --db_file.
func startOmniwitness(tb testing.TB, origin, logVKey string) realWitness {
	tb.Helper()
	bin := witnessBin(tb, "omniwitness")
	dir := tb.TempDir()
	name := "witness.test/omni"
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		tb.Fatal(err)
	}
	keyFile, logsFile := filepath.Join(dir, "witness.key"), filepath.Join(dir, "logs.yaml")
	if err := os.WriteFile(keyFile, []byte(skey), 0o600); err != nil {
		tb.Fatal(err)
	}
	yaml := fmt.Sprintf("Logs:\n  - Origin: %s\n    URL: http://127.0.0.1/\n    PublicKey: %s\n", origin, logVKey)
	if err := os.WriteFile(logsFile, []byte(yaml), 0o600); err != nil {
		tb.Fatal(err)
	}
	addr := freeAddr(tb)
	logs := startProc(tb, exec.Command(bin, "--listen", addr, "--metrics_listen", "", "--private_key_path", keyFile,
		"--additional_logs", logsFile, "--db_file", filepath.Join(dir, "omni.db")))
	w := realWitness{Name: name, URL: "http://" + addr, VKey: vkey}
	waitHTTP(tb, w.URL, logs)
	return w
}

// tlogLog is a served Braid whose key exists before it starts, so a
// witness can be told the log's key first.
type tlogLog struct {
	s            *testServer
	b            *browser
	key          tlog.Key
	keyFile      string
	origin, vkey string
}

func newTlogLog(tb testing.TB, extra ...string) *tlogLog {
	tb.Helper()
	keyFile := filepath.Join(tb.TempDir(), "log.key")
	k, _, err := tlog.LoadOrCreateKey(keyFile, "braid.local/witnessed")
	if err != nil {
		tb.Fatal(err)
	}
	l := &tlogLog{key: k, keyFile: keyFile, origin: k.Origin, vkey: k.VKey}
	l.s = startServer(tb, append([]string{"--log-key", keyFile, "--origin", k.Origin}, extra...)...)
	l.b = newBrowser(tb, l.s.URL)
	return l
}

// grow opens a ticket and waits for the checkpoint that covers it.
func (l *tlogLog) grow(tb testing.TB, title string) int64 {
	tb.Helper()
	l.b.open(title)
	n := int64(countEvents(tb, l.s.DB))
	waitCheckpoint(tb, l.s.URL, n)
	return n
}

func tlogArgs(ws ...realWitness) []string {
	args := []string{"--witness", "tlog"}
	for _, w := range ws {
		args = append(args, "--witness-url", w.URL, "--witness-key", w.VKey)
	}
	return args
}

// forkLog copies the stopped log, rewrites its tail from position from
// with fresh hashes, rebuilds the tree, re-signs a checkpoint with the
// log's own key and deletes the anchors and the witnesses' sizes: all a
// forger holding the database and the key can do.
func forkLog(tb testing.TB, l *tlogLog, from int64) string {
	tb.Helper()
	n := int64(countEvents(tb, l.s.DB))
	forged := tampered(tb, l.s.DB, func(db *sql.DB) {
		rewriteTail(tb, db, from, n, func(e *events.Event) { e.Actor = "mallory" })
		mustExec(tb, db, `DELETE FROM anchors`, `DELETE FROM witness_sizes`, `DELETE FROM checkpoints`)
	})
	if code, out, errb := runWeb(tb, "replay", "--db", forged); code != 0 {
		tb.Fatalf("replay of the forged log: exit %d %s %s", code, out, errb)
	}
	db, err := sql.Open("sqlite", "file:"+forged)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	root, err := xtlog.TreeHash(n, tlog.Reader{Ctx: context.Background(), Q: db})
	if err != nil {
		tb.Fatal(err)
	}
	s := &tlog.Signer{Key: l.key, Store: func(ctx context.Context, fn func(context.Context, events.Querier) error) error { return fn(ctx, db) }}
	if err := s.SignAndStore(context.Background(), tlog.Head{Size: n, Root: root}); err != nil {
		tb.Fatal(err)
	}
	return forged
}

// lastReceipt writes the newest receipt of witness to a file.
func lastReceipt(tb testing.TB, path, witness string) string {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var r []byte
	if err := db.QueryRow(`SELECT receipt FROM anchors WHERE witness = ? ORDER BY id DESC LIMIT 1`, witness).Scan(&r); err != nil {
		tb.Fatalf("receipt of %s: %v", witness, err)
	}
	f := filepath.Join(tb.TempDir(), "cosigned.txt")
	if err := os.WriteFile(f, r, 0o600); err != nil {
		tb.Fatal(err)
	}
	return f
}

var roundTrip = regexp.MustCompile(`round_trip=(\S+)`)

// witnessScenario: cosignatures for growing checkpoints, the 409 path when
// Braid lost the witness's size, verify re-checking the receipts offline,
// and a forked log (tail rewritten, tree rebuilt, re-signed with the log's
// key, anchors deleted) refused by the witness and caught by verify with
// the cosigned checkpoint kept outside.
func witnessScenario(t *testing.T, start func(testing.TB, string, string) realWitness) {
	l := newTlogLog(t)
	w := start(t, l.origin, l.vkey)
	wname := "tlog:" + w.Name
	l.b.register("ada")
	n1 := l.grow(t, "one")
	anchor := func(db string, extra ...string) (int, string, string) {
		return runWeb(t, append(append([]string{"anchor", "--db", db}, tlogArgs(w)...), extra...)...)
	}
	code, out, errb := anchor(l.s.DB)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("anchored position %d", n1)) || !strings.Contains(out, "with "+wname) {
		t.Fatalf("first anchor: exit %d\n%s%s", code, out, errb)
	}
	if m := roundTrip.FindStringSubmatch(out); m != nil {
		t.Logf("%s: first cosignature round trip %s", w.Name, m[1])
	}
	n2 := l.grow(t, "two")
	code, out, errb = anchor(l.s.DB)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("anchored position %d", n2)) {
		t.Fatalf("anchor of the grown log: exit %d\n%s%s", code, out, errb)
	}
	if m := roundTrip.FindStringSubmatch(out); m != nil {
		t.Logf("%s: cosignature round trip with a consistency proof %s", w.Name, m[1])
	}
	// Braid forgets the witness's size: the witness answers 409 with it and
	// Braid retries once with the proof from there.
	db, err := sql.Open("sqlite", "file:"+l.s.DB)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `DELETE FROM witness_sizes`)
	db.Close()
	n3 := l.grow(t, "three")
	code, out, errb = anchor(l.s.DB)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("anchored position %d", n3)) {
		t.Fatalf("anchor after losing the witness's size: exit %d\n%s%s", code, out, errb)
	}
	if w.State != "" {
		sdb, err := sql.Open("sqlite", "file:"+w.State)
		if err != nil {
			t.Fatal(err)
		}
		var size int64
		if err := sdb.QueryRow(`SELECT tree_size FROM log WHERE origin = ?`, l.origin).Scan(&size); err != nil || size != n3 {
			t.Fatalf("litewitness state: size %d (%v), want %d", size, err, n3)
		}
		sdb.Close()
	}
	// verify re-checks every tlog receipt offline.
	code, out, errb = runWeb(t, "verify", "--db", l.s.DB, "--vkey", l.vkey)
	if code != 0 || strings.Count(out, "receipt checked by "+wname) != 3 {
		t.Fatalf("verify of the witnessed log: exit %d\n%s%s", code, out, errb)
	}
	// Without the log's key (it lives elsewhere here) the receipts are
	// compared with the log only, and verify says so.
	code, out, errb = runWeb(t, "verify", "--db", l.s.DB)
	if code != 0 || strings.Count(out, "receipt not checked: no log key") != 3 {
		t.Fatalf("verify without the log's key: exit %d\n%s%s", code, out, errb)
	}
	kept := lastReceipt(t, l.s.DB, wname)
	l.s.stop()

	// The fork: from the first ticket's last event on.
	forged := forkLog(t, l, n1)
	code, out, errb = anchor(forged)
	if code != 1 || !strings.Contains(errb, wname) || !(strings.Contains(errb, "422") || strings.Contains(errb, "409")) {
		t.Fatalf("anchor of the forked log: exit %d, want 1 naming %s and 409/422\n%s%s", code, wname, out, errb)
	}
	t.Logf("%s refuses the fork: %s", w.Name, strings.TrimSpace(errb))
	// The forged database alone verifies: its anchors are gone...
	if code, out, errb := runWeb(t, "verify", "--db", forged, "--vkey", l.vkey); code != 0 {
		t.Fatalf("verify of the forged log alone: exit %d, want 0 (nothing in it is left to tell)\n%s%s", code, out, errb)
	}
	// ...but not against the cosigned checkpoint kept outside it.
	code, out, errb = runWeb(t, "verify", "--db", forged, "--vkey", l.vkey, "--witness-key", w.VKey, "--cosigned", kept)
	if code != 1 || !strings.Contains(errb, "the log was rewritten") || !strings.Contains(errb, w.Name) {
		t.Fatalf("verify --cosigned of the forged log: exit %d, want 1 naming the rewrite\n%s%s", code, out, errb)
	}
	// The same file checks against the real log.
	if code, out, errb := runWeb(t, "verify", "--db", l.s.DB, "--vkey", l.vkey, "--witness-key", w.VKey, "--cosigned", kept); code != 0 || !strings.Contains(out, "cosigned by "+w.Name) {
		t.Fatalf("verify --cosigned of the real log: exit %d\n%s%s", code, out, errb)
	}
}

func TestTlogWitnessLitewitness(t *testing.T) { witnessScenario(t, startLitewitness) }

// TestTlogWitnessWrongLogKey: a witness told another key for the log's
// origin refuses its checkpoints: litewitness 403, omniwitness its
// documented 500 (the spec says 403); exit 1, the witness named.
func TestTlogWitnessWrongLogKey(t *testing.T) {
	l := newTlogLog(t)
	_, other, err := note.GenerateKey(rand.Reader, l.origin)
	if err != nil {
		t.Fatal(err)
	}
	lw := startLitewitness(t, l.origin, other)
	ow := startOmniwitness(t, l.origin, other)
	l.b.register("ada")
	l.grow(t, "one")
	for _, c := range []struct {
		w    realWitness
		want string
	}{{lw, ": 403: it does not accept the log's signature"}, {ow, ": 500: "}} {
		code, out, errb := runWeb(t, append([]string{"anchor", "--db", l.s.DB}, tlogArgs(c.w)...)...)
		t.Logf("%s: %s", c.w.Name, strings.TrimSpace(errb))
		if code != 1 || !strings.Contains(errb, "tlog:"+c.w.Name+c.want) && !strings.Contains(errb, "tlog:"+c.w.Name+": 403") {
			t.Fatalf("%s with the wrong log key: exit %d, want 1 and %q\n%s%s", c.w.Name, code, c.want, out, errb)
		}
	}
}

// TestTlogWitnessFlags: bad witness flags exit 2 with one line, and
// nothing is recorded.
func TestTlogWitnessFlags(t *testing.T) {
	path, _ := seedLog(t, 4)
	_, vkey, _ := note.GenerateKey(rand.Reader, "witness.test/x")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--witness", "tlog"}, "needs --witness-url and --witness-key"},
		{[]string{"--witness", "tlog", "--witness-url", "http://127.0.0.1:1"}, "one key per URL"},
		{[]string{"--witness", "tlog", "--witness-url", "ftp://x", "--witness-key", vkey}, "want an http:// or https:// URL"},
		{[]string{"--witness", "tlog", "--witness-url", "http://127.0.0.1:1", "--witness-key", "nonsense"}, "--witness-key"},
		{[]string{"--witness", "tlog", "--witness-url", "http://127.0.0.1:1", "--witness-key", vkey, "--witness-quorum", "2"}, "--witness-quorum 2: want 1 to 1"},
		{[]string{"--witness", "tlog", "--witness-url", "http://127.0.0.1:1", "--witness-key", vkey, "--witness-url", "http://127.0.0.1:2", "--witness-key", vkey}, "given twice"},
		{[]string{"--witness", "rfc3161", "--tsa-url", "http://127.0.0.1:1", "--witness-key", vkey}, "--witness-key does not go with --witness rfc3161"},
		{[]string{"--witness", "tlog", "--witness-url", "http://127.0.0.1:1", "--witness-key", vkey, "--tsa-url", "http://x"}, "--tsa-url does not go with --witness tlog"},
		{[]string{"--witness", "tlog", "--witness-url", "http://127.0.0.1:1", "--witness-key", vkey}, "nothing to anchor: no signed checkpoint yet"},
	} {
		code, out, errb := runWeb(t, append([]string{"anchor", "--db", path}, c.args...)...)
		if code != 2 || out != "" || !strings.Contains(errb, c.want) || strings.Count(strings.TrimSpace(errb), "\n") > 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, code, out, errb, c.want)
		}
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM anchors`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("anchors after bad flags: %d (%v), want 0", n, err)
	}
}

func TestTlogWitnessOmniwitness(t *testing.T) { witnessScenario(t, startOmniwitness) }

// TestTlogWitnessQuorum: two real witnesses; 2 of 2 cosign; with one
// unreachable, 1 of 2 is enough and the other is named; a forked log is
// refused by both, exit 1 naming each.
func TestTlogWitnessQuorum(t *testing.T) {
	l := newTlogLog(t)
	lw := startLitewitness(t, l.origin, l.vkey)
	ow := startOmniwitness(t, l.origin, l.vkey)
	l.b.register("ada")
	n := l.grow(t, "one")
	args := append([]string{"anchor", "--db", l.s.DB, "--witness-quorum", "2"}, tlogArgs(lw, ow)...)
	code, out, errb := runWeb(t, args...)
	if code != 0 || strings.Count(out, fmt.Sprintf("anchored position %d", n)) != 2 {
		t.Fatalf("2 of 2: exit %d\n%s%s", code, out, errb)
	}
	dead := realWitness{Name: "witness.test/dead", URL: "http://" + freeAddr(t)}
	_, dead.VKey, _ = note.GenerateKey(rand.Reader, dead.Name)
	l.grow(t, "two")
	code, out, errb = runWeb(t, append([]string{"anchor", "--db", l.s.DB, "--witness-quorum", "1"}, tlogArgs(lw, dead)...)...)
	if code != 0 || !strings.Contains(out, "tlog:"+lw.Name) || !strings.Contains(errb, "tlog:witness.test/dead did not cosign") {
		t.Fatalf("1 of 2 with one down: exit %d\n%s%s", code, out, errb)
	}
	code, out, errb = runWeb(t, append([]string{"anchor", "--db", l.s.DB, "--witness-quorum", "2"}, tlogArgs(lw, dead)...)...)
	if code != 2 || !strings.Contains(errb, "tlog:witness.test/dead") {
		t.Fatalf("2 of 2 with one down: exit %d, want 2 (a witness could not be reached)\n%s%s", code, out, errb)
	}
	l.s.stop()
	forged := forkLog(t, l, 2)
	code, out, errb = runWeb(t, append([]string{"anchor", "--db", forged, "--witness-quorum", "1"}, tlogArgs(lw, ow)...)...)
	if code != 1 || !strings.Contains(errb, "tlog:"+lw.Name+": ") || !strings.Contains(errb, "tlog:"+ow.Name+": ") {
		t.Fatalf("forked log, 1 of 2: exit %d, want 1 naming both witnesses\n%s%s", code, out, errb)
	}
}

// TestServeAnchorsWithTlogWitness: serve --anchor-every with --witness
// tlog gets the checkpoints cosigned on its own schedule.
func TestServeAnchorsWithTlogWitness(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "log.key")
	k, _, err := tlog.LoadOrCreateKey(keyFile, "braid.local/scheduled")
	if err != nil {
		t.Fatal(err)
	}
	w := startLitewitness(t, k.Origin, k.VKey)
	s := startServer(t, append([]string{"--log-key", keyFile, "--origin", k.Origin, "--anchor-every", "100ms"}, tlogArgs(w)...)...)
	b := newBrowser(t, s.URL)
	b.register("ada")
	b.open("one")
	n := int64(countEvents(t, s.DB))
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, out, _ := runWeb(t, "verify", "--db", s.DB, "--vkey", k.VKey)
		if code == 0 && strings.Contains(out, fmt.Sprintf("at position %d (witness tlog:%s", n, w.Name)) && strings.Contains(out, "receipt checked by tlog:"+w.Name) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cosigned checkpoint of size %d from serve's schedule:\n%s\n%s", n, out, s.Log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// /verify, public, shows the latest cosigned checkpoint: its size, the
	// witness's name and time, on the page and in JSON.
	pub := newBrowser(t, s.URL)
	page := pub.get("/verify")
	if page.status != 200 || !strings.Contains(page.body, fmt.Sprintf(`<strong id="cosigned-size">%d</strong>`, n)) || !strings.Contains(page.body, "<code>"+w.Name+"</code> at <time") {
		t.Fatalf("/verify: got %d, want the cosigned checkpoint of size %d by %s\n%s", page.status, n, w.Name, page.body)
	}
	js := pub.do("GET", "/verify", nil, "Accept", "application/json")
	var rep struct {
		Checkpoint struct {
			Cosigned struct {
				Size      int64
				Witnesses []struct{ Name, At string }
			}
		}
	}
	if err := json.Unmarshal([]byte(js.body), &rep); err != nil || rep.Checkpoint.Cosigned.Size != n || len(rep.Checkpoint.Cosigned.Witnesses) != 1 ||
		rep.Checkpoint.Cosigned.Witnesses[0].Name != w.Name || rep.Checkpoint.Cosigned.Witnesses[0].At == "" {
		t.Fatalf("/verify JSON: %v %s", err, js.body)
	}
}

// BenchmarkWitnessCosign measures one add-checkpoint round trip with each
// real witness on 127.0.0.1: the latest checkpoint posted with the
// witness's last size, the cosignature checked (the checkpoint is the same
// each time, so the proof is empty; the witness still checks and signs).
//
//	go test -run '^$' -bench WitnessCosign ./cmd/web
func BenchmarkWitnessCosign(b *testing.B) {
	for _, c := range []struct {
		name  string
		start func(testing.TB, string, string) realWitness
	}{{"litewitness", startLitewitness}, {"omniwitness", startOmniwitness}} {
		b.Run(c.name, func(b *testing.B) {
			l := newTlogLog(b)
			w := c.start(b, l.origin, l.vkey)
			l.b.register("ada")
			n := l.grow(b, "one")
			db, err := sql.Open("sqlite", "file:"+l.s.DB+"?_pragma=busy_timeout(5000)")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			tw, err := anchor.NewTlogWitness(w.URL, w.VKey)
			if err != nil {
				b.Fatal(err)
			}
			p := &anchor.TlogPolicy{Witnesses: []*anchor.TlogWitness{tw}, Read: db, State: db}
			ctx := context.Background()
			if _, err := p.AnchorAll(ctx, events.Head{Position: n}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := p.AnchorAll(ctx, events.Head{Position: n}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
