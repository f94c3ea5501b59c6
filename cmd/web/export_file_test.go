package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFailedExportKeepsTheOldFile: export -o FILE writes beside FILE and
// renames; when it fails, FILE is byte for byte what it was and no
// temporary file is left.
func TestFailedExportKeepsTheOldFile(t *testing.T) {
	good, _ := seedLog(t, 8)
	dir := t.TempDir()
	notBraid := filepath.Join(dir, "empty.db")
	os.WriteFile(notBraid, nil, 0o600)
	// A log whose fifth row cannot be read: export fails half way.
	unreadable := tampered(t, good, func(db *sql.DB) { mustExec(t, db, `UPDATE events SET schema = 'one' WHERE position = 5`) })
	for _, c := range []struct {
		name, db string
		wantCode int
	}{
		{"missing database", filepath.Join(dir, "missing.db"), 2},
		{"not a Braid database", notBraid, 2},
		{"fails half way", unreadable, 2},
		{"success", good, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "backup.jsonl")
			const old = "yesterday's backup\n"
			os.WriteFile(out, []byte(old), 0o600)
			code, _, errb := runWeb(t, "export", "--db", c.db, "-o", out)
			b, err := os.ReadFile(out)
			if code != c.wantCode || err != nil {
				t.Fatalf("exit %d (%s), read %v; want %d", code, errb, err, c.wantCode)
			}
			if c.wantCode != 0 && string(b) != old {
				t.Fatalf("a failed export changed FILE: %q", b)
			}
			if c.wantCode == 0 && strings.Count(string(b), "\n") != 8 {
				t.Fatalf("export wrote %q", b)
			}
			if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
				t.Fatalf("export left %d files beside FILE, want 1", len(ents))
			}
		})
	}
}
