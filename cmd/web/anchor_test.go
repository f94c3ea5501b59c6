package main

import (
	"context"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"braid/internal/anchor"
	"braid/internal/anchor/anchortest"
	"braid/internal/events"
	"braid/migrations"
)

// seedLog writes n events into a fresh database at path through the real
// writer, with a one-type registry, and returns the head.
func seedAnchorLog(tb testing.TB, path string, n int) events.Head {
	tb.Helper()
	ctx := context.Background()
	db, err := events.Open(ctx, path, migrations.FS)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	reg := events.NewRegistry()
	type noted struct {
		N int `json:"n"`
	}
	t := events.Define[noted](reg, "note_taken", 1)
	w, err := events.NewWriter(ctx, db, reg, events.WriterOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Close()
	for i := 1; i <= n; i++ {
		if _, err := w.Do(ctx, events.Command{Actor: "tester", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			return []events.Change{{AggregateType: "note", AggregateID: "1", Expect: events.Any,
				Events: []events.Pending{t.New(noted{N: i})}}}, nil
		}}); err != nil {
			tb.Fatal(err)
		}
	}
	return w.Head()
}

func runAnchor(args ...string) (code int, stdout, stderr string) {
	var out, errb strings.Builder
	code = run(context.Background(), append([]string{"anchor"}, args...), func(string) string { return "" }, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestAnchorCommand(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "braid.db")
	head := seedAnchorLog(t, dbPath, 3)
	headHex := hex.EncodeToString(head.Hash[:])
	empty := filepath.Join(dir, "empty.db")

	tsa := anchortest.NewTSA(t, "Braid Test")
	rogue := anchortest.NewTSA(t, "Rogue")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + ln.Addr().String()
	ln.Close()

	rpc := anchortest.StartAnvil(t)
	keyFile := filepath.Join(dir, "anvil.key")
	if err := os.WriteFile(keyFile, []byte(anchortest.AnvilKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "roots.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // regexp
		wantStderr string // substring
	}{
		{"rfc3161 with roots", []string{"--db", dbPath, "--witness", "rfc3161", "--tsa-url", tsa.URL, "--tsa-roots", tsa.Roots}, 0,
			`^anchored position 3 hash ` + headHex + ` with rfc3161: chain=checked policy=1\.2\.3\.4\.1 serial=\d+ tsa=CN=Braid Test TSA tsa_time=\S+ url=http://127\.0\.0\.1:\d+\n$`, ""},
		{"rfc3161 without roots", []string{"--db", dbPath, "--witness", "rfc3161", "--tsa-url", tsa.URL}, 0,
			`^anchored position 3 hash ` + headHex + ` with rfc3161: chain=not checked: no --tsa-roots given `, ""},
		{"evm on anvil", []string{"--db", dbPath, "--witness", "evm", "--rpc-url", rpc, "--key-file", keyFile, "--chain-id", "31337"}, 0,
			`^anchored position 3 hash ` + headHex + ` with evm: block=\d+ chain_id=31337 from=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 tx=0x[0-9a-f]{64}\n$`, ""},
		{"untrusted tsa", []string{"--db", dbPath, "--witness", "rfc3161", "--tsa-url", rogue.URL, "--tsa-roots", tsa.Roots}, 1, `^$`, "witness refused: rfc3161: token signature"},
		{"wrong chain", []string{"--db", dbPath, "--witness", "evm", "--rpc-url", rpc, "--key-file", keyFile, "--chain-id", "1"}, 1, `^$`, "want --chain-id 1"},
		{"tsa down", []string{"--db", dbPath, "--witness", "rfc3161", "--tsa-url", downURL}, 2, `^$`, "connection refused"},
		{"empty log", []string{"--db", empty, "--witness", "rfc3161", "--tsa-url", tsa.URL}, 2, `^$`, "nothing to anchor"},
		{"unreachable db", []string{"--db", filepath.Join(dir, "no", "such", "dir", "b.db"), "--witness", "rfc3161", "--tsa-url", tsa.URL}, 2, `^$`, "open"},
		{"no witness", []string{"--db", dbPath}, 2, `^$`, "--witness is required"},
		{"unknown witness", []string{"--db", dbPath, "--witness", "ots"}, 2, `^$`, `unknown --witness "ots"`},
		{"rfc3161 without url", []string{"--db", dbPath, "--witness", "rfc3161"}, 2, `^$`, "needs --tsa-url"},
		{"mixed flags", []string{"--db", dbPath, "--witness", "rfc3161", "--tsa-url", tsa.URL, "--key-file", keyFile}, 2, `^$`, "--key-file does not go with --witness rfc3161"},
		{"bad roots", []string{"--db", dbPath, "--witness", "rfc3161", "--tsa-url", tsa.URL, "--tsa-roots", notPEM}, 2, `^$`, "no PEM certificate"},
		{"evm without key", []string{"--db", dbPath, "--witness", "evm", "--rpc-url", rpc}, 2, `^$`, "needs --rpc-url and --key-file"},
		{"bad key file", []string{"--db", dbPath, "--witness", "evm", "--rpc-url", rpc, "--key-file", notPEM}, 2, `^$`, "does not hold a hex private key"},
		{"stray argument", []string{"--db", dbPath, "--witness", "rfc3161", "--tsa-url", tsa.URL, "extra"}, 2, `^$`, "unexpected argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runAnchor(c.args...)
			if code != c.wantCode {
				t.Fatalf("exit: got %d, want %d (stdout %q, stderr %q)", code, c.wantCode, stdout, stderr)
			}
			if !regexp.MustCompile(c.wantStdout).MatchString(stdout) {
				t.Errorf("stdout: got %q, want a match for %s", stdout, c.wantStdout)
			}
			if !strings.Contains(stderr, c.wantStderr) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr, c.wantStderr)
			}
		})
	}

	// Three anchors were recorded (rfc3161 twice, evm once) and all hold
	// against the log; the checked ones also against their witnesses.
	ctx := context.Background()
	db, err := events.Open(ctx, dbPath, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	roots, err := anchor.LoadRoots(tsa.Roots)
	if err != nil {
		t.Fatal(err)
	}
	client, err := anchor.DialEVM(ctx, rpc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	res, err := anchor.CheckAll(ctx, db.Read, map[string]anchor.Witness{
		"rfc3161": &anchor.RFC3161{Roots: roots}, "evm": &anchor.EVM{Client: client}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("anchors recorded: got %d, want 3", len(res))
	}
	for _, r := range res {
		if !r.OK || !r.Checked || r.Position != 3 {
			t.Errorf("anchor %d (%s): got ok=%v checked=%v position %d: %s, want ok and checked at position 3", r.ID, r.Witness, r.OK, r.Checked, r.Position, r.Reason)
		}
	}
}
