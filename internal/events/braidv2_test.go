package events_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/migrations"
)

func TestBraidV2DocExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "braid.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	e := docExample
	e.Format = 2
	for i := range 32 {
		e.Salt = append(e.Salt, byte(i))
	}
	e.Commitment = events.PayloadCommitment(e.Salt, e.Data)
	if got, want := events.Hex(e.Commitment), docBlock(t, doc, "braid-v2-example-commitment"); len(want) != 1 || got != want[0] {
		t.Fatalf("commitment of the example: got %s, want %v (docs/braid.md)", got, want)
	}
	var hx strings.Builder
	for _, l := range docBlock(t, doc, "braid-v2-example-body") {
		if !strings.HasPrefix(l, "#") {
			hx.WriteString(strings.Join(strings.Fields(l), ""))
		}
	}
	docBody, err := hex.DecodeString(hx.String())
	if err != nil {
		t.Fatalf("v2 body in docs/braid.md is not hex: %v", err)
	}
	if got := e.Body(nil); !bytes.Equal(got, docBody) || len(got) != 232 {
		t.Fatalf("v2 body of the example:\n got %x\nwant %x (docs/braid.md)", got, docBody)
	}
	e.Hash = e.ComputeHash()
	if got, want := events.Hex(e.Hash), docBlock(t, doc, "braid-v2-example-hash"); len(want) != 1 || got != want[0] {
		t.Fatalf("v2 hash of the example: got %s, want %v (docs/braid.md)", got, want)
	}
	line, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if want := docBlock(t, doc, "braid-v2-example-export"); len(want) != 1 || string(line) != want[0] {
		t.Fatalf("v2 export line:\n got %s\nwant %v", line, want)
	}

	// The erased line: same hash, data null; it verifies as erased once
	// an erased event follows at position 2.
	erased := e
	erased.Salt, erased.ErasedBy, erased.Data = nil, 2, []byte(`{"erased":["username","display_name"]}`)
	eline, _ := json.Marshal(erased)
	if want := docBlock(t, doc, "braid-v2-example-erased"); len(want) != 1 || string(eline) != want[0] {
		t.Fatalf("erased export line:\n got %s\nwant %v", eline, want)
	}
	next := events.Event{Position: 2, AggregateType: "erasure", AggregateID: "1", Version: 1, Type: events.ErasedType, Schema: 1,
		Actor: "admin", OccurredAt: "2026-11-22T11:00:00.000000000Z", CommandID: strings.Repeat("ab", 16), Data: []byte(`{"positions":[1]}`), ParentHash: e.Hash}
	next.SealV2()
	next.Hash = next.ComputeHash()
	nline, _ := json.Marshal(next)
	for _, first := range [][]byte{line, eline} {
		rep, err := events.VerifyExport(bytes.NewReader(append(append(append([]byte(nil), first...), '\n'), append(nline, '\n')...)))
		wantErased := int64(0)
		if bytes.Equal(first, eline) {
			wantErased = 1
		}
		if err != nil || !rep.Intact || rep.Erased != wantErased || rep.Head.Hash != next.Hash {
			t.Fatalf("verify %s: %+v %v; want intact, %d erased", first, rep, err, wantErased)
		}
	}
	// Alone, the erased line names an erasure that is not in the log.
	rep, err := events.VerifyExport(bytes.NewReader(append(eline, '\n')))
	if err != nil || rep.Intact || rep.Failure.Position != 1 || !strings.Contains(rep.Failure.Reason, "not in the log") {
		t.Fatalf("erased line alone: %+v %v; want broken at 1, erasure not in the log", rep, err)
	}
}

// v2App is a small domain with an erased event, as brief E's commands
// build it: notes hold personal text; erasing appends an erased event whose
// Command.After calls ErasePayload and whose handler clears the projection.
type v2App struct {
	path    string
	db      *events.DB
	w       *events.Writer
	reg     *events.Registry
	note    events.Type[v2Note]
	erasure events.Type[v2Erased]
}

type v2Note struct {
	Title string `json:"title"`
	Body  string `json:"body,omitempty"`
}

type v2Erased struct {
	Positions []int64 `json:"positions"`
	Reason    string  `json:"reason"`
}

func newV2Registry() (*events.Registry, events.Type[v2Note], events.Type[v2Erased]) {
	reg := events.NewRegistry()
	note := events.Define[v2Note](reg, "note_written", 1)
	erasure := events.Define[v2Erased](reg, events.ErasedType, 1)
	p := reg.NewProjection("v2notes", "v2notes")
	events.On(reg, p, note, func(ctx context.Context, q events.Querier, e *events.Event, v v2Note) error {
		_, err := q.ExecContext(ctx, `INSERT INTO v2notes (position, id, title, body) VALUES (?, ?, ?, ?)`, e.Position, e.AggregateID, v.Title, v.Body)
		return err
	})
	events.On(reg, p, erasure, func(ctx context.Context, q events.Querier, e *events.Event, v v2Erased) error {
		for _, pos := range v.Positions {
			if _, err := q.ExecContext(ctx, `UPDATE v2notes SET body = '' WHERE position = ?`, pos); err != nil {
				return err
			}
		}
		return nil
	})
	return reg, note, erasure
}

func openV2App(tb testing.TB, path string) *v2App {
	tb.Helper()
	ctx := context.Background()
	db, err := events.Open(ctx, path, migrations.FS)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := db.Write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS v2notes (position INTEGER PRIMARY KEY, id TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL)`); err != nil {
		tb.Fatal(err)
	}
	reg, note, erasure := newV2Registry()
	w, err := events.NewWriter(ctx, db, reg, events.WriterOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	a := &v2App{path: path, db: db, w: w, reg: reg, note: note, erasure: erasure}
	tb.Cleanup(a.close)
	return a
}

func (a *v2App) close() {
	if a.w != nil {
		a.w.Close()
		a.db.Close()
		a.w = nil
	}
}

func (a *v2App) write(tb testing.TB, id, title, body string) events.Event {
	tb.Helper()
	res, err := a.w.Do(context.Background(), events.Command{Actor: "ada", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
		return []events.Change{{AggregateType: "note", AggregateID: id, Expect: events.Any, Events: []events.Pending{a.note.New(v2Note{Title: title, Body: body})}}}, nil
	}})
	if err != nil {
		tb.Fatal(err)
	}
	return res.Events[0]
}

// erase erases the payloads at positions, keeping each note's title.
func (a *v2App) erase(tb testing.TB, positions ...int64) (events.Event, error) {
	tb.Helper()
	ctx := context.Background()
	res, err := a.w.Do(ctx, events.Command{Actor: "admin", Kind: "erase",
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			return []events.Change{{AggregateType: "erasure", AggregateID: events.NewID(), Expect: 0,
				Events: []events.Pending{a.erasure.New(v2Erased{Positions: positions, Reason: "asked"})}}}, nil
		},
		After: func(ctx context.Context, q events.Querier, appended []events.Event) error {
			for _, p := range positions {
				e, err := events.Get(ctx, q, p)
				if err != nil {
					return err
				}
				var n v2Note
				json.Unmarshal(e.Data, &n)
				kept, _ := json.Marshal(v2Note{Title: n.Title})
				if err := events.ErasePayload(ctx, q, p, kept, appended[0].Position); err != nil {
					return err
				}
			}
			return nil
		}})
	if err != nil {
		return events.Event{}, err
	}
	if err := events.SecureDelete(ctx, a.db); err != nil {
		tb.Fatal(err)
	}
	return res.Events[0], nil
}

func TestIdenticalPayloadsHaveDifferentCommitments(t *testing.T) {
	a := openV2App(t, filepath.Join(t.TempDir(), "braid.db"))
	e1 := a.write(t, "1", "same", "same words")
	e2 := a.write(t, "1", "same", "same words")
	if !bytes.Equal(e1.Data, e2.Data) || e1.Format != 2 || e2.Format != 2 {
		t.Fatalf("payloads %s %s formats %d %d; want equal payloads, v2", e1.Data, e2.Data, e1.Format, e2.Format)
	}
	if bytes.Equal(e1.Salt, e2.Salt) || len(e1.Salt) != 32 || e1.Commitment == e2.Commitment {
		t.Fatalf("salts %x %x, commitments %x %x: want 32-byte salts and commitments that differ", e1.Salt, e2.Salt, e1.Commitment, e2.Commitment)
	}
	var data string
	var commitment, salt []byte
	var format int
	if err := a.db.Read.QueryRow(`SELECT e.data, e.format, e.commitment, p.salt FROM events e JOIN payloads p USING (position) WHERE position = 2`).Scan(&data, &format, &commitment, &salt); err != nil {
		t.Fatal(err)
	}
	if data != "" || format != 2 || !bytes.Equal(commitment, e2.Commitment[:]) || !bytes.Equal(salt, e2.Salt) {
		t.Fatalf("stored row: data %q format %d commitment %x salt %x; want '' 2 and the event's", data, format, commitment, salt)
	}
	got, err := events.Get(context.Background(), a.db.Read, 2)
	if err != nil || !bytes.Equal(got.Data, e2.Data) || got.Commitment != e2.Commitment || got.Hash != e2.Hash {
		t.Fatalf("read back: %+v %v", got, err)
	}
}

// TestEraseProperty: a generated history, a random set of payloads
// erased; the log verifies with "N payloads erased", replay gives what a
// fresh replay (import of the export) gives, the export round-trips, and
// no erased word is left in the database file.
func TestEraseProperty(t *testing.T) {
	seed := seedFor(t)
	rnd := rand.New(rand.NewSource(seed))
	ctx := context.Background()
	dir := t.TempDir()
	a := openV2App(t, filepath.Join(dir, "braid.db"))
	secret := func(i int) string { return fmt.Sprintf("zq%06dsecret", i) }
	var written []events.Event
	for i := range 60 + rnd.Intn(60) {
		written = append(written, a.write(t, fmt.Sprint(rnd.Intn(7)), fmt.Sprintf("title %d", i), secret(i)+" lives at 1 Main St"))
	}
	var gone []int
	var positions []int64
	for i := range written {
		if rnd.Intn(3) == 0 {
			gone = append(gone, i)
			positions = append(positions, written[i].Position)
		}
	}
	if len(positions) == 0 {
		gone, positions = []int{0}, []int64{written[0].Position}
	}
	// Erase in two commands, to have more than one erased event.
	half := len(positions) / 2
	if half > 0 {
		if _, err := a.erase(t, positions[:half]...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.erase(t, positions[half:]...); err != nil {
		t.Fatal(err)
	}

	rep := mustVerify(t, a.db, int64(len(written)+1+min(half, 1)))
	if rep.Erased != int64(len(positions)) {
		t.Fatalf("seed %d: verify counted %d erased, want %d", seed, rep.Erased, len(positions))
	}
	// Reads give the kept remnant and say who erased.
	e, err := events.Get(ctx, a.db.Read, positions[0])
	if err != nil || e.ErasedBy == 0 || e.Salt != nil || strings.Contains(string(e.Data), "secret") || !strings.Contains(string(e.Data), "title") {
		t.Fatalf("erased event reads %+v %v", e, err)
	}

	// Replay after erasure equals a fresh replay of the same log.
	var export bytes.Buffer
	if _, err := events.Export(ctx, a.db.Read, &export); err != nil {
		t.Fatal(err)
	}
	if strings.Count(export.String(), `"data":null`) != len(positions) {
		t.Fatalf("export has %d erased lines, want %d", strings.Count(export.String(), `"data":null`), len(positions))
	}
	xrep, err := events.VerifyExport(bytes.NewReader(export.Bytes()))
	if err != nil || !xrep.Intact || xrep.Erased != rep.Erased || xrep.Head != rep.Head {
		t.Fatalf("verify export: %+v %v; want intact as the log, %d erased", xrep, err, rep.Erased)
	}
	if _, err := events.Replay(ctx, a.db, a.reg, a.w, events.ReplayOptions{TempDir: dir}); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "fresh.db")
	fdb, err := events.Open(ctx, fresh, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	defer fdb.Close()
	fdb.Write.Exec(`CREATE TABLE v2notes (position INTEGER PRIMARY KEY, id TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL)`)
	freg, _, _ := newV2Registry()
	irep, err := events.Import(ctx, fdb, freg, bytes.NewReader(export.Bytes()))
	if err != nil || irep.Head != rep.Head || irep.Erased != rep.Erased {
		t.Fatalf("import: %+v %v", irep, err)
	}
	dump := func(q *sql.DB) string {
		var s string
		q.QueryRow(`SELECT group_concat(position || '|' || id || '|' || title || '|' || body, char(10)) FROM (SELECT * FROM v2notes ORDER BY position)`).Scan(&s)
		return s
	}
	if got, want := dump(a.db.Read), dump(fdb.Read); got != want || want == "" {
		t.Fatalf("seed %d: projection after replay differs from a fresh replay:\n got %.300s\nwant %.300s", seed, got, want)
	}
	var again bytes.Buffer
	events.Export(ctx, fdb.Read, &again)
	if again.String() != export.String() {
		t.Fatalf("seed %d: export of the imported log differs from the original export", seed)
	}

	// No erased word is left in the file (after the checkpoint; then
	// after VACUUM too), while the words kept are there.
	a.close()
	check := func(when string) {
		for _, suffix := range []string{"", "-wal"} {
			b, _ := os.ReadFile(a.path + suffix)
			for _, i := range gone {
				if bytes.Contains(b, []byte(secret(i))) {
					t.Fatalf("seed %d: %s: erased %q is still in %s", seed, when, secret(i), filepath.Base(a.path+suffix))
				}
			}
		}
	}
	check("after the checkpoint")
	raw, err := sql.Open("sqlite", "file:"+a.path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`VACUUM`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	check("after VACUUM")
	b, _ := os.ReadFile(a.path)
	kept := 0
	for i := range written {
		if bytes.Contains(b, []byte(secret(i))) {
			kept++
		}
	}
	if kept != len(written)-len(gone) {
		t.Fatalf("seed %d: %d secrets kept in the file, want %d", seed, kept, len(written)-len(gone))
	}
}

func TestErasePayloadRefuses(t *testing.T) {
	ctx := context.Background()
	// A v1 log (an import of v1 lines), then a v2 event appended to it.
	e := docExample
	e.Hash = e.ComputeHash()
	line, _ := json.Marshal(e)
	path := filepath.Join(t.TempDir(), "braid.db")
	db, err := events.Open(ctx, path, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	reg, _, _ := newV2Registry()
	events.Define[json.RawMessage](reg, "user_registered", 1)
	if _, err := events.Import(ctx, db, reg, bytes.NewReader(append(line, '\n'))); err != nil {
		t.Fatal(err)
	}
	db.Close()
	a := openV2App(t, path)
	a.write(t, "1", "t", "body")
	err = events.ErasePayload(ctx, a.db.Aux, 1, []byte(`{}`), 3)
	if !errors.Is(err, events.ErrV1NotErasable) {
		t.Fatalf("erase a v1 payload: %v, want ErrV1NotErasable", err)
	}
	if err := events.ErasePayload(ctx, a.db.Aux, 99, []byte(`{}`), 100); errs.Code(err) != errs.NotFound {
		t.Fatalf("erase an unknown position: %v, want not_found", err)
	}
	if _, err := a.erase(t, 1); !errors.Is(err, events.ErrV1NotErasable) {
		t.Fatalf("erase command on a v1 payload: %v, want ErrV1NotErasable", err)
	}
	rep := mustVerify(t, a.db, 2) // the refused command appended nothing
	if rep.Erased != 0 {
		t.Fatalf("erased %d", rep.Erased)
	}
	var format int
	a.db.Read.QueryRow(`SELECT format FROM events WHERE position = 1`).Scan(&format)
	if format != 1 {
		t.Fatalf("imported v1 line stored as format %d", format)
	}
}

// TestErasedByMustNameAnErasedEvent: an erased payload whose erased_by
// points at an event of another type, or nowhere, is a failure naming it.
func TestErasedByMustNameAnErasedEvent(t *testing.T) {
	a := openV2App(t, filepath.Join(t.TempDir(), "braid.db"))
	a.write(t, "1", "a", "first secret")
	a.write(t, "1", "b", "second")
	a.write(t, "2", "c", "third")
	mustVerify(t, a.db, 3)
	if _, err := a.db.Aux.Exec(`CREATE TABLE saved AS SELECT * FROM payloads`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sql, want string
	}{
		{`UPDATE payloads SET salt = NULL, data = '{}', erased_by = 3 WHERE position = 1`, "which is a note_written event, not erased"},
		{`UPDATE payloads SET salt = NULL, data = '{}', erased_by = 9 WHERE position = 1`, "which is not in the log"},
		{`UPDATE payloads SET salt = NULL, data = '{}', erased_by = 1 WHERE position = 2`, "not later in the log"},
	} {
		if _, err := a.db.Aux.Exec(c.sql); err != nil {
			t.Fatal(err)
		}
		for _, q := range []events.Querier{a.db.Read, mustConn(t, a.db.Read)} {
			rep, err := events.Verify(context.Background(), q)
			if err != nil || rep.Intact || !strings.Contains(rep.Failure.Reason, c.want) {
				t.Fatalf("%s: %+v %v; want a failure saying %q", c.sql, rep.Failure, err, c.want)
			}
		}
		if _, err := a.db.Aux.Exec(`DELETE FROM payloads; INSERT INTO payloads SELECT * FROM saved`); err != nil {
			t.Fatal(err)
		}
		mustVerify(t, a.db, 3)
	}
}

func mustConn(t *testing.T, db *sql.DB) *sql.Conn {
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
