package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"braid/internal/events"
)

func TestExportThenVerifyFileInGoAndPython(t *testing.T) {
	path, head := seedLog(t, 40)
	dir := t.TempDir()
	file := filepath.Join(dir, "braid.jsonl")
	if code, _, errb := runWeb(t, "export", "--db", path, "-o", file); code != 0 {
		t.Fatalf("export: exit %d, %s", code, errb)
	}
	code, stdout, _ := runWeb(t, "export", "--db", path)
	b, _ := os.ReadFile(file)
	if code != 0 || stdout != string(b) || strings.Count(stdout, "\n") != 40 {
		t.Fatalf("export to stdout: exit %d, %d lines, same as -o: %v; want 0, 40, true", code, strings.Count(stdout, "\n"), stdout == string(b))
	}
	want := fmt.Sprintf("intact: 40 events, head %s", events.Hex(head.Hash))
	if code, out, errb := runWeb(t, "verify", "--file", file); code != 0 || firstLine(out) != want {
		t.Fatalf("verify --file: exit %d, %q (%s); want 0, %q", code, firstLine(out), errb, want)
	}
	if code, out := python(t, file); code != 0 || firstLine(out) != want {
		t.Fatalf("verify-export.py: exit %d, %q; want 0, %q", code, firstLine(out), want)
	}

	// The same tampering, seen at the same position by both verifiers.
	lines := strings.SplitAfter(string(b), "\n")
	for _, c := range []struct{ name, from, to string }{
		{"payload", `\"note\":\"second ü\"`, `\"note\":\"second u\"`},
		{"actor", `"actor":"user1"`, `"actor":"user2"`},
		{"version", `"version":3,`, `"version":4,`},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := make([]string, len(lines))
			copy(out, lines)
			at := -1
			for i := 10; i < len(out); i++ {
				if strings.Contains(out[i], c.from) {
					out[i], at = strings.Replace(out[i], c.from, c.to, 1), i+1
					break
				}
			}
			if at < 0 {
				t.Fatalf("no line after 10 has %s", c.from)
			}
			bad := filepath.Join(t.TempDir(), "bad.jsonl")
			os.WriteFile(bad, []byte(strings.Join(out, "")), 0o600)
			wantPrefix := fmt.Sprintf("broken at position %d: ", at)
			gcode, gout, _ := runWeb(t, "verify", "--file", bad)
			pcode, pout := python(t, bad)
			if gcode != 1 || pcode != 1 || !strings.HasPrefix(gout, wantPrefix) || !strings.HasPrefix(pout, wantPrefix) {
				t.Fatalf("go: exit %d %q; python: exit %d %q; want 1 and %q… from both", gcode, firstLine(gout), pcode, firstLine(pout), wantPrefix)
			}
		})
	}

	bad := filepath.Join(dir, "notjson.jsonl")
	os.WriteFile(bad, []byte(lines[0]+lines[1]+"{\"position\": 3,\n"), 0o600)
	if code, _, errb := runWeb(t, "verify", "--file", bad); code != 2 || !strings.Contains(errb, "line 3") {
		t.Fatalf("verify --file of bad JSON: exit %d, stderr %q; want 2 naming line 3", code, errb)
	}
	if code, _ := python(t, bad); code != 2 {
		t.Fatalf("verify-export.py of bad JSON: exit %d, want 2", code)
	}
	if code, _, _ := runWeb(t, "verify", "--file", filepath.Join(dir, "missing.jsonl")); code != 2 {
		t.Fatalf("verify --file of a missing file: exit %d, want 2", code)
	}
}

func python(t *testing.T, file string) (int, string) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	cmd := exec.Command("python3", "../../tools/verify-export.py", file)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String() + errb.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

func TestImportRestoresExport(t *testing.T) {
	path, head := seedLog(t, 40)
	dir := t.TempDir()
	file := filepath.Join(dir, "braid.jsonl")
	if code, _, errb := runWeb(t, "export", "--db", path, "-o", file); code != 0 {
		t.Fatalf("export: exit %d, %s", code, errb)
	}
	b, _ := os.ReadFile(file)
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, bytes.Replace(b, []byte(`"actor":"user1"`), []byte(`"actor":"user0"`), 1), 0o600)
	restored := filepath.Join(dir, "restored.db")
	if code, _, errb := runWeb(t, "import", bad, "--db", restored); code != 1 || !strings.Contains(errb, "broken at position") {
		t.Fatalf("import of a tampered export: exit %d, %q; want 1", code, errb)
	}
	if code, out, errb := runWeb(t, "import", file, "--db", restored); code != 0 || !strings.Contains(out, "imported 40 events") {
		t.Fatalf("import: exit %d, %q %q; want 0", code, out, errb)
	}
	want := fmt.Sprintf("intact: 40 events, head %s", events.Hex(head.Hash))
	if code, out, _ := runWeb(t, "verify", "--db", restored); code != 0 || firstLine(out) != want {
		t.Fatalf("verify of the restored database: exit %d, %q; want 0, %q", code, firstLine(out), want)
	}
	code, again, _ := runWeb(t, "export", "--db", restored)
	if code != 0 || again != string(b) {
		t.Fatalf("export of the restored database differs from the export it came from")
	}
	if code, _, errb := runWeb(t, "import", "--db", restored, file); code != 2 || !strings.Contains(errb, "already has 40 events") {
		t.Fatalf("import into a database with events: exit %d, %q; want 2", code, errb)
	}
}

func TestReplayCommand(t *testing.T) {
	path, _ := seedLog(t, 40)
	code, out, errb := runWeb(t, "replay", "--db", path)
	if code != 0 || !strings.HasPrefix(out, "replayed 40 events in ") {
		t.Fatalf("replay: exit %d, %q %q; want 0, a summary line", code, out, errb)
	}
	cp := tampered(t, path, func(db *sql.DB) { mustExec(t, db, `UPDATE events SET actor = 'mallory' WHERE position = 17`) })
	code, out, errb = runWeb(t, "replay", "--db", cp)
	if code != 1 || !strings.Contains(errb, "broken at position 17: hash mismatch") {
		t.Fatalf("replay of a tampered log: exit %d, %q %q; want 1 naming position 17", code, out, errb)
	}
	if code, _, _ := runWeb(t, "replay", "--db", filepath.Join(t.TempDir(), "none.db")); code != 2 {
		t.Fatalf("replay of a missing database: exit %d, want 2", code)
	}
}
