package events_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"braid/internal/events"
	"braid/migrations"
)

// The Appender continues a log from its head as Import starts one: the
// second half of an export appended after the first gives the same log
// and the same projections; a gap is a *BrokenError.
func TestAppenderContinuesImport(t *testing.T) {
	ctx := context.Background()
	a := openNotesApp(t, filepath.Join(t.TempDir(), "a.db"))
	n := seedNotes(t, a.w, a.d, newNotesModel(seedFor(t)), 200)
	var buf bytes.Buffer
	if _, err := events.Export(ctx, a.db.Read, &buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	k := int(n / 2)
	notes := func(db *events.DB) string {
		var s string
		if err := db.Read.QueryRow(`SELECT group_concat(id || title || body || edits, '|') FROM (SELECT * FROM notes ORDER BY id)`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	open := func(name string) (*events.DB, *notesDomain) {
		db, err := events.Open(ctx, filepath.Join(t.TempDir(), name), migrations.FS)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		d := newNotesDomain(t, db)
		if _, err := events.Import(ctx, db, d.reg, strings.NewReader(strings.Join(lines[:k], ""))); err != nil {
			t.Fatal(err)
		}
		return db, d
	}
	appendLines := func(db *events.DB, d *notesDomain, ls []string) error {
		conn, err := db.Write.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.ExecContext(ctx, `BEGIN IMMEDIATE`)
		app, err := events.NewAppender(ctx, conn, d.reg)
		if err != nil {
			t.Fatal(err)
		}
		if err := events.ReadExport(strings.NewReader(strings.Join(ls, "")), func(_ int64, e *events.Event) error { return app.Add(e) }); err != nil {
			app.Close()
			conn.ExecContext(ctx, `ROLLBACK`)
			return err
		}
		if _, err := app.Finish(); err != nil {
			t.Fatal(err)
		}
		_, err = conn.ExecContext(ctx, `COMMIT`)
		return err
	}

	b, bd := open("b.db")
	if err := appendLines(b, bd, lines[k:]); err != nil {
		t.Fatalf("append the second half: %v", err)
	}
	r, err := events.Verify(ctx, b.Read)
	if err != nil || !r.Intact || r.Head != a.w.Head() {
		t.Fatalf("after appending: %+v %v; want intact with head %+v", r, err, a.w.Head())
	}
	if notes(b) != notes(a.db) {
		t.Fatal("the projections differ from the source's")
	}

	c, cd := open("c.db")
	err = appendLines(c, cd, lines[k+1:])
	var broken *events.BrokenError
	if !errors.As(err, &broken) || broken.Failure.Position != int64(k)+1 {
		t.Fatalf("append with a gap: %v; want broken at position %d", err, k+1)
	}
	if h, _ := events.ReadHead(ctx, c.Read); h.Position != int64(k) {
		t.Fatalf("the refused append left the head at %d, want %d", h.Position, k)
	}
}
