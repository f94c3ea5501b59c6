package events_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/migrations"
)

// TestOpenUsesTheFileNamed: a path is a file name, never part of a URI, so
// each odd name creates exactly that file and nothing else.
func TestOpenUsesTheFileNamed(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{
		"we?ird.db", "a#b.db", "100%25.db", "100%.db", "%zz.db", "with space.db", "ünïcødé 日本.db",
		"q?mode=memory.db", "x?_pragma=journal_mode(DELETE)&y.db", "a+b;c=d&e.db", "#?%#.db",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			sub := filepath.Join(dir, "sub")
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{filepath.Join(sub, name), name} {
				if path == name {
					// A relative path, from the directory it names.
					wd, _ := os.Getwd()
					if err := os.Chdir(sub); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { os.Chdir(wd) })
					os.Remove(name)
				}
				db, err := events.Open(ctx, path, migrations.FS)
				if err != nil {
					t.Fatalf("open %q: %v", path, err)
				}
				if _, err := events.ReadHead(ctx, db.Read); err != nil {
					t.Fatalf("read head of %q: %v", path, err)
				}
				db.Close()
				entries, _ := os.ReadDir(sub)
				var got []string
				for _, e := range entries {
					got = append(got, e.Name())
				}
				if !slices.Equal(got, []string{name}) {
					t.Fatalf("open %q made %q in its directory; want only %q", path, got, name)
				}
				ro, err := events.OpenReadOnly(ctx, path)
				if err != nil {
					t.Fatalf("open %q read-only: %v", path, err)
				}
				ro.Close()
				if top, _ := os.ReadDir(dir); len(top) != 1 {
					t.Fatalf("open %q made files outside its directory: %v", path, top)
				}
			}
		})
	}
}

// TestOpenReadOnlyRefusesWhatIsNotBraid: a zero-byte, non-SQLite or
// non-Braid file is refused and left exactly as it was.
func TestOpenReadOnlyRefusesWhatIsNotBraid(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	other := filepath.Join(dir, "other.db")
	// An SQLite database without an events table.
	odb, err := events.Open(ctx, other, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := odb.Write.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	odb.Close()
	for _, c := range []struct {
		name, content, want string
	}{
		{"zero bytes", "", "zero.db is not a Braid database (no events table)"},
		{"text", "hello, not a database\n", "text.db is not a Braid database (not an SQLite file)"},
		{"other SQLite", "", "other.db is not a Braid database (no events table)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, map[string]string{"zero bytes": "zero.db", "text": "text.db", "other SQLite": "other.db"}[c.name])
			if c.name != "other SQLite" {
				os.WriteFile(path, []byte(c.content), 0o600)
			}
			before, _ := os.ReadFile(path)
			st, _ := os.Stat(path)
			_, err := events.OpenReadOnly(ctx, path)
			if err == nil || errs.Code(err) != errs.Invalid || errs.Message(err) != filepath.Join(dir, c.want) {
				t.Fatalf("got %v, want invalid %q", err, filepath.Join(dir, c.want))
			}
			after, _ := os.ReadFile(path)
			st2, _ := os.Stat(path)
			if string(after) != string(before) || !st2.ModTime().Equal(st.ModTime()) {
				t.Fatalf("the file changed")
			}
			for _, s := range []string{"-wal", "-shm", "-journal"} {
				if _, err := os.Stat(path + s); err == nil {
					t.Fatalf("%s%s was left behind", path, s)
				}
			}
		})
	}
}
