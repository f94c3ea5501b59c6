package events_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"braid/internal/errs"
	"braid/internal/events"
)

func TestExportIsTheLogLineForLine(t *testing.T) {
	seed := seedFor(t)
	ctx := context.Background()
	a := openNotesApp(t, filepath.Join(t.TempDir(), "braid.db"))
	n := seedNotes(t, a.w, a.d, newNotesModel(seed), 300)
	var buf bytes.Buffer
	got, err := events.Export(ctx, a.db.Read, &buf)
	if err != nil || got != n {
		t.Fatalf("export: got %d, %v; want %d events", got, err, n)
	}
	// Every event the writer appends is braid v2: the v1 keys, then
	// format, salt and commitment.
	keys := []string{"position", "aggregate_type", "aggregate_id", "version", "event_type", "schema", "actor", "occurred_at", "command_id", "data", "parent_hash", "hash", "format", "salt", "commitment"}
	sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	var pos int64
	for sc.Scan() {
		pos++
		var m map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d: %v", pos, err)
		}
		if len(m) != len(keys) {
			t.Fatalf("line %d has %d keys, want %d", pos, len(m), len(keys))
		}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Fatalf("line %d: key %s missing", pos, k)
			}
		}
		e, err := events.Get(ctx, a.db.Read, pos)
		if err != nil {
			t.Fatal(err)
		}
		var data, hash string
		json.Unmarshal(m["data"], &data)
		json.Unmarshal(m["hash"], &hash)
		if data != string(e.Data) || hash != events.Hex(e.Hash) {
			t.Fatalf("line %d: data %q hash %s; want %q %s", pos, data, hash, e.Data, events.Hex(e.Hash))
		}
	}
	if pos != n {
		t.Fatalf("export has %d lines, want %d", pos, n)
	}

	rep, err := events.VerifyExport(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	live := mustVerify(t, a.db, n)
	if !rep.Intact || rep.Events != n || rep.Head != live.Head {
		t.Fatalf("verify export: got %+v, want intact, %d events, head %x", rep, n, live.Head.Hash)
	}
}

func TestVerifyExportNamesTheBadLine(t *testing.T) {
	a := openNotesApp(t, filepath.Join(t.TempDir(), "braid.db"))
	seedNotes(t, a.w, a.d, newNotesModel(1), 20)
	var buf bytes.Buffer
	if _, err := events.Export(context.Background(), a.db.Read, &buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	for _, c := range []struct{ name, line, want string }{
		{"not json", "{not json\n", "line 3: not a JSON event"},
		{"missing key", strings.Replace(lines[2], `"actor":`, `"speaker":`, 1), "line 3"},
		{"upper-case hash", strings.Replace(lines[2], `"hash":"`, `"hash":"ABC`, 1), "line 3: hash"},
		{"blank line", "\n", "line 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := lines[0] + lines[1] + c.line + strings.Join(lines[3:], "")
			_, err := events.VerifyExport(strings.NewReader(in))
			if err == nil || !strings.Contains(err.Error(), c.want) || errs.Code(err) != errs.Invalid {
				t.Fatalf("got %v, want an invalid error containing %q", err, c.want)
			}
		})
	}
}

func TestImportRestoresLogAndProjections(t *testing.T) {
	seed := seedFor(t)
	ctx := context.Background()
	a := openNotesApp(t, filepath.Join(t.TempDir(), "braid.db"))
	n := seedNotes(t, a.w, a.d, newNotesModel(seed), 1000)
	var buf bytes.Buffer
	if _, err := events.Export(ctx, a.db.Read, &buf); err != nil {
		t.Fatal(err)
	}

	// A broken file is refused and leaves nothing behind.
	broken := bytes.Replace(buf.Bytes(), []byte(`"actor":"user1"`), []byte(`"actor":"mallory"`), 1)
	b := openNotesDB(t)
	_, err := events.Import(ctx, b.db, b.d.reg, bytes.NewReader(broken))
	var be *events.BrokenError
	if !errors.As(err, &be) {
		t.Fatalf("import of a tampered export: got %v, want a broken braid", err)
	}
	if h, _ := events.ReadHead(ctx, b.db.Read); h.Position != 0 {
		t.Fatalf("a refused import left %d events", h.Position)
	}

	rep, err := events.Import(ctx, b.db, b.d.reg, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("seed %d: import: %v", seed, err)
	}
	if !rep.Intact || rep.Events != n || rep.Head != a.w.Head() {
		t.Fatalf("import: got %+v, want %d events to %+v", rep, n, a.w.Head())
	}
	compareDumps(t, dumpTables(t, b.db.Read, b.d.reg), dumpTables(t, a.db.Read, a.d.reg), seed)
	dumpLog := func(q events.Querier) string {
		rows, err := q.QueryContext(ctx, `SELECT quote(position), quote(command_index), quote(data), hex(hash), actor, occurred_at FROM events ORDER BY position`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var sb strings.Builder
		for rows.Next() {
			var p, ci, d, h, ac, at string
			rows.Scan(&p, &ci, &d, &h, &ac, &at)
			sb.WriteString(p + ci + d + h + ac + at + "\n")
		}
		return sb.String()
	}
	if g, w := dumpLog(b.db.Read), dumpLog(a.db.Read); g != w {
		t.Fatalf("imported log differs from the original")
	}
	for name, p := range checkpoints(t, b.db.Read) {
		if p != n {
			t.Errorf("checkpoint %s: got %d, want %d", name, p, n)
		}
	}
	if _, err := events.Import(ctx, b.db, b.d.reg, bytes.NewReader(buf.Bytes())); errs.Code(err) != errs.Conflict {
		t.Fatalf("second import: got %v, want a conflict", err)
	}
	// A writer on the restored database carries on the braid.
	w, err := events.NewWriter(ctx, b.db, b.d.reg, events.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Head() != a.w.Head() {
		t.Fatalf("head of the restored database: got %+v, want %+v", w.Head(), a.w.Head())
	}
}

type notesDB struct {
	db *events.DB
	d  *notesDomain
}

func openNotesDB(tb testing.TB) notesDB {
	db := openTestDB(tb)
	return notesDB{db: db, d: newNotesDomain(tb, db)}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// A line longer than MaxLine is refused with its number, and the reader
// stops near the cap instead of holding a hostile line in memory.
func TestReadExportRefusesOverlongLine(t *testing.T) {
	a := openNotesApp(t, filepath.Join(t.TempDir(), "braid.db"))
	seedNotes(t, a.w, a.d, newNotesModel(1), 2)
	var buf bytes.Buffer
	if _, err := events.Export(context.Background(), a.db.Read, &buf); err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("x", 50<<20) // 50 MB with no newline, like the review's file
	cr := &countingReader{r: io.MultiReader(&buf, strings.NewReader(huge))}
	want := fmt.Sprintf("line %d is longer than 8 MiB", strings.Count(buf.String(), "\n")+1)
	_, err := events.VerifyExport(cr)
	if err == nil || !strings.Contains(err.Error(), want) || errs.Code(err) != errs.Invalid {
		t.Fatalf("got %v, want an invalid error saying %q", err, want)
	}
	if cr.n > events.MaxLine+int64(buf.Cap())+1<<20 {
		t.Fatalf("read %d bytes; it should stop near the %d-byte cap", cr.n, events.MaxLine)
	}
	// A line exactly at the cap is still read (and then judged as JSON).
	line := strings.Repeat("y", events.MaxLine-1) + "\n"
	if _, err := events.VerifyExport(strings.NewReader(line)); err == nil || strings.Contains(err.Error(), "longer than") {
		t.Fatalf("a line of exactly MaxLine bytes: got %v, want a JSON error, not the length", err)
	}
}
