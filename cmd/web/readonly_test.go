package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"braid/internal/events"
)

// snapshot is a file's bytes and modification time, and which of its
// SQLite companions exist.
func snapshot(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	st, _ := os.Stat(path)
	s := string(b) + "\x00" + st.ModTime().String()
	for _, suffix := range []string{"-wal", "-shm", "-journal", ".lock"} {
		if _, err := os.Stat(path + suffix); err == nil {
			s += " " + suffix
		}
	}
	return s
}

func TestReadingCommandsChangeNothing(t *testing.T) {
	dir := t.TempDir()
	zero := filepath.Join(dir, "zero.db")
	text := filepath.Join(dir, "text.db")
	os.WriteFile(zero, nil, 0o600)
	os.WriteFile(text, []byte("not a database\n"), 0o600)
	real, _ := seedLog(t, 8)
	cases := []struct {
		name, db string
		wantCode int
		wantErr  string
	}{
		{"zero bytes", zero, 2, zero + " is not a Braid database (no events table)"},
		{"not SQLite", text, 2, text + " is not a Braid database (not an SQLite file)"},
		{"a real log", real, 0, ""},
	}
	for _, c := range cases {
		for _, cmd := range [][]string{{"verify"}, {"verify", "--json"}, {"export"}} {
			t.Run(c.name+" "+strings.Join(cmd, " "), func(t *testing.T) {
				before := snapshot(t, c.db)
				code, _, errb := runWeb(t, append(cmd, "--db", c.db)...)
				if code != c.wantCode || !strings.Contains(errb, c.wantErr) {
					t.Fatalf("exit %d, stderr %q; want %d, %q", code, errb, c.wantCode, c.wantErr)
				}
				if after := snapshot(t, c.db); after != before {
					t.Fatalf("the database or its companions changed: %q became %q", before[len(before)-60:], after[len(after)-60:])
				}
			})
		}
	}
}

// TestReadingCommandsOnReadOnlyFileSystem runs verify and export in a
// user and mount namespace where the database's directory is mounted
// read-only (skipped where unshare is not allowed).
func TestReadingCommandsOnReadOnlyFileSystem(t *testing.T) {
	if os.Getenv("BRAID_RO_HELPER") != "" {
		return
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	path, head := seedLog(t, 8)
	dir := filepath.Dir(path)
	probe := exec.Command("unshare", "-rm", "sh", "-c", `mount --bind -o ro "$0" "$0" && ! touch "$0/probe" 2>/dev/null`, dir)
	if out, err := probe.CombinedOutput(); err != nil {
		t.Skipf("cannot mount read-only here: %v %s", err, out)
	}
	for _, cmd := range []string{"verify", "export"} {
		t.Run(cmd, func(t *testing.T) {
			c := exec.Command("unshare", "-rm", "sh", "-c", `mount --bind -o ro "$0" "$0" && exec "$@"`, dir,
				os.Args[0], "-test.run=^TestReadOnlyHelper$")
			c.Env = append(os.Environ(), "BRAID_RO_HELPER="+cmd+" --db "+path)
			var out bytes.Buffer
			c.Stdout, c.Stderr = &out, &out
			err := c.Run()
			if err != nil || !strings.Contains(out.String(), "exit 0") {
				t.Fatalf("%s on a read-only file system: %v\n%s", cmd, err, out.String())
			}
			if cmd == "verify" && !strings.Contains(out.String(), "intact: 8 events, head "+events.Hex(head.Hash)) {
				t.Fatalf("verify on a read-only file system:\n%s", out.String())
			}
			if cmd == "export" && strings.Count(out.String(), `"position":`) != 8 {
				t.Fatalf("export on a read-only file system:\n%s", out.String())
			}
		})
	}
}

// TestReadOnlyHelper runs the command in BRAID_RO_HELPER; it is the body
// that TestReadingCommandsOnReadOnlyFileSystem starts inside a namespace.
func TestReadOnlyHelper(t *testing.T) {
	args := strings.Fields(os.Getenv("BRAID_RO_HELPER"))
	if len(args) == 0 {
		t.Skip("only run by TestReadingCommandsOnReadOnlyFileSystem")
	}
	code := run(context.Background(), args, func(string) string { return "" }, os.Stdin, os.Stdout, os.Stdout)
	os.Stdout.WriteString("\nexit " + string(rune('0'+code)) + "\n")
}
