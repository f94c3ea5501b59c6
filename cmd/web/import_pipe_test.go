package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"braid/internal/events"
)

// TestImportFromAPipe: import reads its file once, so /dev/stdin on a real
// pipe works, and - reads standard input; a broken export through a pipe
// imports nothing and leaves no database.
func TestImportFromAPipe(t *testing.T) {
	path, head := seedLog(t, 8)
	code, export, _ := runWeb(t, "export", "--db", path)
	if code != 0 {
		t.Fatal("export failed")
	}
	broken := strings.Replace(export, `"actor":"user1"`, `"actor":"user2"`, 1)
	want := "imported 8 events into "
	for _, c := range []struct {
		name, input, file string
		wantCode          int
		wantOut           string
	}{
		{"/dev/stdin", export, "/dev/stdin", 0, want},
		{"-", export, "-", 0, want},
		{"broken through /dev/stdin", broken, "/dev/stdin", 1, "is broken at position 5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "restored.db")
			cmd := exec.Command(os.Args[0], "-test.run=^TestReadOnlyHelper$")
			cmd.Env = append(os.Environ(), "BRAID_RO_HELPER=import "+c.file+" --db "+db)
			cmd.Stdin = strings.NewReader(c.input) // exec gives the child a pipe
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), fmt.Sprintf("exit %d", c.wantCode)) || !strings.Contains(string(out), c.wantOut) {
				t.Fatalf("import %s: %v\n%s\nwant exit %d and %q", c.file, err, out, c.wantCode, c.wantOut)
			}
			if c.wantCode != 0 {
				if _, err := os.Stat(db); err == nil {
					t.Fatalf("a refused import left %s behind", db)
				}
				return
			}
			if code, out, _ := runWeb(t, "verify", "--db", db); code != 0 || !strings.Contains(out, events.Hex(head.Hash)) {
				t.Fatalf("verify after import: exit %d, %q", code, firstLine(out))
			}
		})
	}
}
