package events_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/migrations"
)

// notesDomain is a generic registry for the audit tests, shaped like a real
// app: notes with an FTS5 index, tags in a WITHOUT ROWID table, tallies,
// and a second, external-content FTS5 index kept by triggers.
type notesDomain struct {
	reg     *events.Registry
	created events.Type[noteCreated]
	edited  events.Type[noteEdited]
	deleted events.Type[noteDeleted]
	tagged  events.Type[noteTagged]
	tally   events.Type[tallyAdded]
}

type noteCreated struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}
type noteEdited struct {
	Body string `json:"body"`
}
type noteDeleted struct{}
type noteTagged struct {
	Tag    string `json:"tag"`
	Remove bool   `json:"remove,omitempty"`
}
type tallyAdded struct {
	By int `json:"by"`
}

const notesSchema = `
CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL, edits INTEGER NOT NULL DEFAULT 0, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS notes_title_idx ON notes(title);
CREATE VIRTUAL TABLE IF NOT EXISTS notes_fts USING fts5(title, body);
CREATE TABLE IF NOT EXISTS note_tags (note_id INTEGER NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (note_id, tag)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tallies (name TEXT NOT NULL UNIQUE, total INTEGER NOT NULL, last_position INTEGER NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS notes_body_fts USING fts5(body, content='notes', content_rowid='id');
CREATE TRIGGER IF NOT EXISTS notes_ai AFTER INSERT ON notes BEGIN
  INSERT INTO notes_body_fts(rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER IF NOT EXISTS notes_ad AFTER DELETE ON notes BEGIN
  INSERT INTO notes_body_fts(notes_body_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER IF NOT EXISTS notes_au AFTER UPDATE ON notes BEGIN
  INSERT INTO notes_body_fts(notes_body_fts, rowid, body) VALUES ('delete', old.id, old.body);
  INSERT INTO notes_body_fts(rowid, body) VALUES (new.id, new.body);
END;
`

// newNotesDomain creates the projection tables in db and returns the registry.
func newNotesDomain(tb testing.TB, db *events.DB) *notesDomain {
	tb.Helper()
	if _, err := db.Write.ExecContext(context.Background(), notesSchema); err != nil {
		tb.Fatal(err)
	}
	reg := events.NewRegistry()
	d := &notesDomain{reg: reg,
		created: events.Define[noteCreated](reg, "note_created", 1),
		edited:  events.Define[noteEdited](reg, "note_edited", 1),
		deleted: events.Define[noteDeleted](reg, "note_deleted", 1),
		tagged:  events.Define[noteTagged](reg, "note_tagged", 1),
		tally:   events.Define[tallyAdded](reg, "tally_added", 1),
	}
	notes := reg.NewProjection("notes", "notes", "notes_fts", "notes_body_fts")
	events.On(reg, notes, d.created, func(ctx context.Context, q events.Querier, e *events.Event, v noteCreated) error {
		if _, err := q.ExecContext(ctx, `INSERT INTO notes (id, title, body, at) VALUES (?, ?, ?, ?)`, e.AggregateID, v.Title, v.Body, e.OccurredAt); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, `INSERT INTO notes_fts (rowid, title, body) VALUES (?, ?, ?)`, e.AggregateID, v.Title, v.Body)
		return err
	})
	events.On(reg, notes, d.edited, func(ctx context.Context, q events.Querier, e *events.Event, v noteEdited) error {
		if _, err := q.ExecContext(ctx, `UPDATE notes SET body = ?, edits = edits + 1, at = ? WHERE id = ?`, v.Body, e.OccurredAt, e.AggregateID); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, `UPDATE notes_fts SET body = ? WHERE rowid = ?`, v.Body, e.AggregateID)
		return err
	})
	events.On(reg, notes, d.deleted, func(ctx context.Context, q events.Querier, e *events.Event, v noteDeleted) error {
		if _, err := q.ExecContext(ctx, `DELETE FROM notes WHERE id = ?`, e.AggregateID); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, `DELETE FROM notes_fts WHERE rowid = ?`, e.AggregateID)
		return err
	})
	tags := reg.NewProjection("tags", "note_tags")
	events.On(reg, tags, d.tagged, func(ctx context.Context, q events.Querier, e *events.Event, v noteTagged) error {
		var err error
		if v.Remove {
			_, err = q.ExecContext(ctx, `DELETE FROM note_tags WHERE note_id = ? AND tag = ?`, e.AggregateID, v.Tag)
		} else {
			_, err = q.ExecContext(ctx, `INSERT OR IGNORE INTO note_tags (note_id, tag) VALUES (?, ?)`, e.AggregateID, v.Tag)
		}
		return err
	})
	events.On(reg, tags, d.deleted, func(ctx context.Context, q events.Querier, e *events.Event, v noteDeleted) error {
		_, err := q.ExecContext(ctx, `DELETE FROM note_tags WHERE note_id = ?`, e.AggregateID)
		return err
	})
	tallies := reg.NewProjection("tallies", "tallies")
	events.On(reg, tallies, d.tally, func(ctx context.Context, q events.Querier, e *events.Event, v tallyAdded) error {
		_, err := q.ExecContext(ctx, `INSERT INTO tallies (name, total, last_position) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET total = total + excluded.total, last_position = excluded.last_position`, e.AggregateID, v.By, e.Position)
		return err
	})
	return d
}

// notesModel is the generator's view of what exists, so that every command
// it makes is valid (or knowingly rejected).
type notesModel struct {
	rnd   *rand.Rand
	next  int
	live  []int
	words []string
}

func newNotesModel(seed int64) *notesModel {
	return &notesModel{rnd: rand.New(rand.NewSource(seed)), next: 1,
		words: strings.Fields("braid ticket hash log replay verify anchor witness quiet river stone amber sqlite événement 日本 merkle")}
}

func (m *notesModel) text(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(m.words[m.rnd.Intn(len(m.words))])
	}
	return b.String()
}

// command returns a random valid command (or, now and then, one the domain
// rejects: it must append nothing).
func (m *notesModel) command(d *notesDomain) events.Command {
	r := m.rnd
	note := func(id int, evs ...events.Pending) events.Change {
		return events.Change{AggregateType: "note", AggregateID: strconv.Itoa(id), Expect: events.Any, Events: evs}
	}
	var changes []events.Change
	var reject bool
	switch k := r.Intn(10); {
	case k < 3 || len(m.live) == 0:
		id := m.next
		m.next++
		m.live = append(m.live, id)
		evs := []events.Pending{d.created.New(noteCreated{Title: m.text(1 + r.Intn(3)), Body: m.text(3 + r.Intn(12))})}
		for i := r.Intn(3); i > 0; i-- {
			evs = append(evs, d.tagged.New(noteTagged{Tag: m.text(1)}))
		}
		changes = append(changes, note(id, evs...))
	case k < 6:
		id := m.live[r.Intn(len(m.live))]
		changes = append(changes, note(id, d.edited.New(noteEdited{Body: m.text(2 + r.Intn(10))})))
	case k < 7:
		i := r.Intn(len(m.live))
		id := m.live[i]
		m.live = append(m.live[:i], m.live[i+1:]...)
		changes = append(changes, note(id, d.deleted.New(noteDeleted{})))
	case k < 8:
		id := m.live[r.Intn(len(m.live))]
		changes = append(changes, note(id, d.tagged.New(noteTagged{Tag: m.text(1), Remove: r.Intn(2) == 0})))
	case k < 9:
		// Several aggregates in one command.
		for i := 1 + r.Intn(3); i > 0; i-- {
			changes = append(changes, events.Change{AggregateType: "tally", AggregateID: m.text(1), Expect: events.Any,
				Events: []events.Pending{d.tally.New(tallyAdded{By: 1 + r.Intn(5)})}})
		}
	default:
		reject = true
	}
	return events.Command{Actor: fmt.Sprintf("user%d", r.Intn(4)), Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
		if reject {
			return nil, errs.E(errs.Invalid, "rejected on purpose")
		}
		return changes, nil
	}}
}

// seedNotes appends n random commands and returns how many events they made.
func seedNotes(tb testing.TB, w *events.Writer, d *notesDomain, m *notesModel, n int) int64 {
	tb.Helper()
	var total int64
	for i := 0; i < n; i++ {
		res, err := w.Do(context.Background(), m.command(d))
		if errs.Code(err) == errs.Invalid {
			continue
		}
		if err != nil {
			tb.Fatalf("command %d: %v", i, err)
		}
		total += int64(len(res.Events))
	}
	return total
}

// dumpTables returns every row of every table the registry's projections
// own (shadow tables excluded), in rowid order, as text.
func dumpTables(tb testing.TB, q events.Querier, reg *events.Registry) map[string]string {
	tb.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, p := range reg.Projections() {
		for _, t := range p.Tables {
			var ddl string
			if err := q.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE name = ?`, t).Scan(&ddl); err != nil {
				tb.Fatalf("schema of %s: %v", t, err)
			}
			query := `SELECT rowid, * FROM ` + t + ` ORDER BY rowid`
			if strings.Contains(ddl, "WITHOUT ROWID") {
				query = `SELECT * FROM ` + t + ` ORDER BY 1, 2`
			}
			rows, err := q.QueryContext(ctx, query)
			if err != nil {
				tb.Fatalf("dump %s: %v", t, err)
			}
			cols, _ := rows.Columns()
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			var b strings.Builder
			for rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					tb.Fatal(err)
				}
				for _, v := range vals {
					fmt.Fprintf(&b, "%T:%v|", v, v)
				}
				b.WriteByte('\n')
			}
			rows.Close()
			out[t] = b.String()
		}
	}
	// An index kept by triggers must answer queries too, not only hold rows.
	for _, word := range []string{"braid", "amber", "日本"} {
		for _, ft := range []string{"notes_fts", "notes_body_fts"} {
			var n int
			if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+ft+` WHERE `+ft+` MATCH ?`, word).Scan(&n); err != nil {
				tb.Fatalf("search %s in %s: %v", word, ft, err)
			}
			out["match "+word+" in "+ft] = strconv.Itoa(n)
		}
	}
	return out
}

func compareDumps(t *testing.T, got, want map[string]string, seed int64) {
	t.Helper()
	for k, w := range want {
		if g := got[k]; g != w {
			t.Errorf("seed %d: %s after replay differs from before:\n got (%d bytes) %.400s\nwant (%d bytes) %.400s", seed, k, len(g), g, len(w), w)
		}
	}
}

type notesApp struct {
	db *events.DB
	w  *events.Writer
	d  *notesDomain
}

func openNotesApp(tb testing.TB, path string) *notesApp {
	tb.Helper()
	db, err := events.Open(context.Background(), path, migrations.FS)
	if err != nil {
		tb.Fatal(err)
	}
	d := newNotesDomain(tb, db)
	w, err := events.NewWriter(context.Background(), db, d.reg, events.WriterOptions{})
	if err != nil {
		db.Close()
		tb.Fatal(err)
	}
	a := &notesApp{db: db, w: w, d: d}
	tb.Cleanup(a.close)
	return a
}

func (a *notesApp) close() {
	if a.w != nil {
		a.w.Close()
		a.db.Close()
		a.w = nil
	}
}

func seedFor(t *testing.T) int64 {
	seed := time.Now().UnixNano()
	if s := os.Getenv("BRAID_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (rerun with BRAID_SEED=%d)", seed, seed)
	return seed
}

func checkpoints(tb testing.TB, q events.Querier) map[string]int64 {
	tb.Helper()
	rows, err := q.QueryContext(context.Background(), `SELECT name, position FROM projection_checkpoints`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var n string
		var p int64
		rows.Scan(&n, &p)
		out[n] = p
	}
	return out
}

func TestReplayRebuildsIdenticalTables(t *testing.T) {
	seed := seedFor(t)
	ctx := context.Background()
	a := openNotesApp(t, filepath.Join(t.TempDir(), "braid.db"))
	n := seedNotes(t, a.w, a.d, newNotesModel(seed), 3000)
	before := dumpTables(t, a.db.Read, a.d.reg)
	if before["notes"] == "" || before["note_tags"] == "" || before["tallies"] == "" || before["match braid in notes_fts"] == "0" || before["match braid in notes_body_fts"] == "0" {
		t.Fatalf("seed %d: the generator left a projection empty", seed)
	}

	// Damage the live tables, as a bug in a projection would: replay must
	// bring back exactly what the log says.
	err := a.w.Exclusive(ctx, func(ctx context.Context, q events.Querier) error {
		for _, s := range []string{`DELETE FROM notes WHERE id % 3 = 0`, `UPDATE notes_fts SET body = 'garbage' WHERE rowid % 2 = 0`,
			`DELETE FROM note_tags WHERE note_id % 2 = 1`, `UPDATE tallies SET total = -1`, `INSERT INTO notes_body_fts(notes_body_fts) VALUES ('delete-all')`,
			`UPDATE projection_checkpoints SET position = 7`} {
			if _, err := q.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if damaged := dumpTables(t, a.db.Read, a.d.reg); damaged["notes"] == before["notes"] || damaged["match braid in notes_body_fts"] == before["match braid in notes_body_fts"] {
		t.Fatal("damaging the tables changed nothing: the test would prove nothing")
	}

	var calls int
	res, err := events.Replay(ctx, a.db, a.d.reg, a.w, events.ReplayOptions{Batch: 500, Progress: func(done, total int64) { calls++ }})
	if err != nil {
		t.Fatalf("seed %d: replay: %v", seed, err)
	}
	if res.Events != n || res.Head != a.w.Head() {
		t.Fatalf("seed %d: replayed %d events to %+v; want %d to %+v", seed, res.Events, res.Head, n, a.w.Head())
	}
	if calls < int(n/500) {
		t.Errorf("progress called %d times, want at least %d", calls, n/500)
	}
	compareDumps(t, dumpTables(t, a.db.Read, a.d.reg), before, seed)
	for name, p := range checkpoints(t, a.db.Read) {
		if p != n {
			t.Errorf("checkpoint %s: got %d, want %d", name, p, n)
		}
	}
	// With FTS5 built as FTS5 in the scratch database, the same tables.
	if _, err := events.Replay(ctx, a.db, a.d.reg, a.w, events.ReplayOptions{ExactFTS: true}); err != nil {
		t.Fatalf("seed %d: exact replay: %v", seed, err)
	}
	compareDumps(t, dumpTables(t, a.db.Read, a.d.reg), before, seed)
	// The triggers came back: the next command keeps the external index.
	if _, err := a.w.Do(ctx, events.Command{Actor: "t", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
		return []events.Change{{AggregateType: "note", AggregateID: "999999", Expect: 0,
			Events: []events.Pending{a.d.created.New(noteCreated{Title: "x", Body: "zeppelin"})}}}, nil
	}}); err != nil {
		t.Fatal(err)
	}
	var hits int
	a.db.Read.QueryRow(`SELECT COUNT(*) FROM notes_body_fts WHERE notes_body_fts MATCH 'zeppelin'`).Scan(&hits)
	if hits != 1 {
		t.Fatalf("after replay, a new note found %d times in the trigger-kept index, want 1", hits)
	}
	// No scratch file is left behind.
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(a.db.Path), "braid-replay-*"))
	if len(left) > 0 {
		t.Fatalf("scratch files left: %v", left)
	}
}

func TestReplayWhileAnotherWriterAppendsMissesNothing(t *testing.T) {
	seed := seedFor(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "braid.db")
	site := openNotesApp(t, path) // plays `serve`
	seedNotes(t, site.w, site.d, newNotesModel(seed), 3000)
	tool := openNotesApp(t, path) // plays `web replay`, another writer on the same file

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var bumps int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := site.w.Do(ctx, events.Command{Actor: "site", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
				return []events.Change{
					{AggregateType: "tally", AggregateID: "during", Expect: events.Any, Events: []events.Pending{site.d.tally.New(tallyAdded{By: 1})}},
					{AggregateType: "note", AggregateID: strconv.Itoa(1_000_000 + i), Expect: 0, Events: []events.Pending{site.d.created.New(noteCreated{Title: "during", Body: "appended during replay"})}},
				}, nil
			}})
			if err != nil {
				t.Errorf("append during replay: %v", err)
				return
			}
			bumps++
		}
	}()
	var res events.ReplayResult
	var err error
	for round := 0; round < 3 && err == nil; round++ { // several replays, so some overlap for sure
		res, err = events.Replay(ctx, tool.db, tool.d.reg, tool.w, events.ReplayOptions{Batch: 300})
	}
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("seed %d: replay: %v", seed, err)
	}
	if res.Events == 0 {
		t.Fatal("replayed nothing")
	}
	head, err := events.ReadHead(ctx, site.db.Read)
	if err != nil {
		t.Fatal(err)
	}
	var total, during int
	site.db.Read.QueryRow(`SELECT total FROM tallies WHERE name = 'during'`).Scan(&total)
	site.db.Read.QueryRow(`SELECT COUNT(*) FROM notes WHERE title = 'during'`).Scan(&during)
	if bumps == 0 || total != bumps || during != bumps {
		t.Fatalf("seed %d: %d commands appended during the replays; tally %d and %d notes show them (head %d, replay reached %d)", seed, bumps, total, during, head.Position, res.Head.Position)
	}
	// A quiet replay from scratch must find the tables already right.
	live := dumpTables(t, site.db.Read, site.d.reg)
	if _, err := events.Replay(ctx, tool.db, tool.d.reg, tool.w, events.ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	compareDumps(t, dumpTables(t, site.db.Read, site.d.reg), live, seed)
	for name, p := range checkpoints(t, site.db.Read) {
		if p != head.Position {
			t.Errorf("checkpoint %s: got %d, want the head %d", name, p, head.Position)
		}
	}
}

// tamperCopy closes nothing: it copies the database at path (whose
// connections must be closed) to a new file, drops the triggers that guard
// the log there and runs stmts on it.
func tamperCopy(tb testing.TB, path string, stmts ...string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	cp := filepath.Join(tb.TempDir(), "tampered.db")
	if err := os.WriteFile(cp, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+cp)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	for _, s := range append([]string{`DROP TRIGGER events_refuse_update`, `DROP TRIGGER events_refuse_delete`}, stmts...) {
		if _, err := db.Exec(s); err != nil {
			tb.Fatalf("%s: %v", s, err)
		}
	}
	return cp
}

func TestReplayStopsAtBrokenBraidAndChangesNothing(t *testing.T) {
	seed := seedFor(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "braid.db")
	a := openNotesApp(t, path)
	n := seedNotes(t, a.w, a.d, newNotesModel(seed), 1500)
	a.close()
	at := n / 2
	cp := tamperCopy(t, path, fmt.Sprintf(`UPDATE payloads SET data = data || ' ' WHERE position = %d`, at))

	b := openNotesApp(t, cp)
	before := dumpTables(t, b.db.Read, b.d.reg)
	cpBefore := checkpoints(t, b.db.Read)
	_, err := events.Replay(ctx, b.db, b.d.reg, b.w, events.ReplayOptions{Batch: 100})
	var broken *events.BrokenError
	if !errors.As(err, &broken) {
		t.Fatalf("replay of a tampered log: got %v, want a broken braid", err)
	}
	if broken.Failure.Position != at || !strings.Contains(broken.Failure.Reason, "payload commitment mismatch") {
		t.Fatalf("broken at %d (%s), want %d, payload commitment mismatch", broken.Failure.Position, broken.Failure.Reason, at)
	}
	compareDumps(t, dumpTables(t, b.db.Read, b.d.reg), before, seed)
	if got := checkpoints(t, b.db.Read); fmt.Sprint(got) != fmt.Sprint(cpBefore) {
		t.Fatalf("checkpoints after a refused replay: got %v, want %v", got, cpBefore)
	}
}
