package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"braid/internal/tlog"
)

// runPython runs tools/verify-bundle.py with args.
func runPython(tb testing.TB, args ...string) (int, string) {
	tb.Helper()
	cmd := exec.Command("python3", append([]string{filepath.Join("..", "..", "tools", "verify-bundle.py")}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		tb.Fatalf("python3: %v", err)
	}
	return 0, out.String()
}

// TestBundleCheckersAgree: a ticket's proof bundle, bare and cosigned by a
// witness (cosignature/v1), passes `web verify --bundle` and the
// independent tools/verify-bundle.py (standard library Python, its own
// Ed25519); a tampered event, a wrong proof hash, a checkpoint signed by
// another key, a missing and an invalid cosignature are refused by both,
// each naming what is wrong.
func TestBundleCheckersAgree(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	if code, out := runPython(t, "--selftest"); code != 0 {
		t.Fatalf("verify-bundle.py --selftest (RFC 8032 vectors): exit %d %s", code, out)
	}
	s := startServer(t)
	b := newBrowser(t, s.URL)
	b.register("ada")
	ticket := b.open("Lift stuck on 3")
	b.comment(ticket, "the doors don't open")
	b.open("Another one")
	waitCheckpoint(t, s.URL, int64(countEvents(t, s.DB)))
	_, out, _ := runWeb(t, "key", "--db", s.DB)
	vkey := strings.TrimPrefix(strings.Split(out, "\n")[0], "vkey ")
	a := b.get(ticket + "/proof")
	var bundle tlog.Bundle
	if err := json.Unmarshal([]byte(a.body), &bundle); a.status != http.StatusOK || err != nil || len(bundle.Events) < 2 {
		t.Fatalf("GET %s/proof: %d %v\n%s", ticket, a.status, err, a.body)
	}

	witness, wkey, err := tlog.NewCosigner(rand.Reader, "witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	clone := func() tlog.Bundle {
		var c tlog.Bundle
		data, _ := json.Marshal(bundle)
		json.Unmarshal(data, &c)
		return c
	}
	cosigned := clone()
	text, err := tlog.Cosign([]byte(bundle.Checkpoint), witness)
	if err != nil {
		t.Fatal(err)
	}
	cosigned.Checkpoint = string(text)
	tampered := clone()
	tampered.Events[1].Event = json.RawMessage(strings.Replace(string(tampered.Events[1].Event), "open", "OPEN", 1))
	wrongProof := clone()
	wrongProof.Events[0].Proof[0] = base64.StdEncoding.EncodeToString(make([]byte, 32))
	otherKey := clone()
	other, _, _ := note.GenerateKey(rand.Reader, strings.SplitN(bundle.Checkpoint, "\n", 2)[0])
	osig, err := note.NewSigner(other)
	if err != nil {
		t.Fatal(err)
	}
	body, _, _ := strings.Cut(bundle.Checkpoint, "\n\n")
	resigned, err := note.Sign(&note.Note{Text: body + "\n"}, osig)
	if err != nil {
		t.Fatal(err)
	}
	otherKey.Checkpoint = string(resigned)
	badCosig := clone()
	lines := strings.Split(strings.TrimSuffix(cosigned.Checkpoint, "\n"), "\n")
	last := lines[len(lines)-1]
	i := strings.LastIndexByte(last, ' ')
	sig, _ := base64.StdEncoding.DecodeString(last[i+1:])
	sig[len(sig)-1] ^= 1
	lines[len(lines)-1] = last[:i+1] + base64.StdEncoding.EncodeToString(sig)
	badCosig.Checkpoint = strings.Join(lines, "\n") + "\n"

	dir := t.TempDir()
	write := func(name string, b tlog.Bundle) string {
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name+".json")
		if err := writeFile(p, data); err != nil {
			t.Fatal(err)
		}
		return p
	}
	n := len(bundle.Events)
	for _, c := range []struct {
		name    string
		b       tlog.Bundle
		witness bool
		code    int
		want    string
	}{
		{"good", bundle, false, 0, fmt.Sprintf("intact: %d events", n)},
		{"cosigned", cosigned, true, 0, "cosigned by witness.example/w1"},
		{"tampered event", tampered, false, 1, "its hash is not the braid hash of its fields (tampered)"},
		{"wrong proof hash", wrongProof, false, 1, "its inclusion proof does not lead to the checkpoint's root"},
		{"signed by another key", otherKey, false, 1, "does not open with key " + bundle.Checkpoint[:strings.IndexByte(bundle.Checkpoint, '\n')]},
		{"missing cosignature", bundle, true, 1, "carries no cosignature by witness witness.example/w1"},
		{"invalid cosignature", badCosig, true, 1, "the cosignature of witness witness.example/w1 on the checkpoint is invalid"},
	} {
		args := []string{"--vkey", vkey}
		if c.witness {
			args = append(args, "--cosigned-by", wkey)
		}
		p := write(strings.ReplaceAll(c.name, " ", "-"), c.b)
		code, out, errb := runWeb(t, append([]string{"verify", "--bundle", p}, args...)...)
		if code != c.code || !strings.Contains(out+errb, c.want) {
			t.Errorf("%s: web verify --bundle: exit %d, want %d naming %q\n%s%s", c.name, code, c.code, c.want, out, errb)
		}
		pcode, pout := runPython(t, append([]string{p}, args...)...)
		if pcode != c.code || !strings.Contains(pout, c.want) {
			t.Errorf("%s: verify-bundle.py: exit %d, want %d naming %q\n%s", c.name, pcode, c.code, c.want, pout)
		}
	}
}

func writeFile(p string, data []byte) error { return os.WriteFile(p, data, 0o600) }
