package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"braid/internal/events"
	"braid/migrations"
)

// erasedThings has the shape of internal/erase's payload that the
// projections read (positions as objects).
type erasedThings struct {
	Positions []erasedThing `json:"positions"`
}

type erasedThing struct {
	Position int64 `json:"position"`
}

// seedErasedLog is seedLog's log of n events (v2) with the payloads at
// positions erased by one erased event appended after them.
func seedErasedLog(tb testing.TB, n int, positions ...int64) (string, events.Head) {
	tb.Helper()
	path, _ := seedLog(tb, n)
	ctx := context.Background()
	db, err := events.Open(ctx, path, migrations.FS)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	reg := events.NewRegistry()
	events.Define[thingDone](reg, "thing_done", 1)
	erased := events.Define[erasedThings](reg, events.ErasedType, 1)
	w, err := events.NewWriter(ctx, db, reg, events.WriterOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Close()
	_, err = w.Do(ctx, events.Command{Actor: "admin",
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			return []events.Change{{AggregateType: "erasure", AggregateID: "1", Expect: 0, Events: []events.Pending{erased.New(erasedThings{things(positions)})}}}, nil
		},
		After: func(ctx context.Context, q events.Querier, appended []events.Event) error {
			for _, p := range positions {
				if err := events.ErasePayload(ctx, q, p, []byte(`{"n":0}`), appended[0].Position); err != nil {
					return err
				}
			}
			return nil
		}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := events.SecureDelete(ctx, db); err != nil {
		tb.Fatal(err)
	}
	return path, w.Head()
}

// TestErasedPayloadsExportImportAndPython: a v2 log with two erased
// payloads verifies as erased in the database, in its export (Go and the
// Python verifier), and after import; tampering with an erased line's
// commitment or a live line's salt is caught by both verifiers.
func TestErasedPayloadsExportImportAndPython(t *testing.T) {
	path, head := seedErasedLog(t, 20, 3, 10)
	want := fmt.Sprintf("intact: 21 events, head %s; 2 payloads erased", events.Hex(head.Hash))
	if code, out, errb := runWeb(t, "verify", "--db", path); code != 0 || firstLine(out) != want {
		t.Fatalf("verify --db: exit %d, %q (%s); want 0, %q", code, firstLine(out), errb, want)
	}
	// /verify says so too, on the page and in JSON.
	s := startServer(t, "--db", path)
	anon := newBrowser(t, s.URL)
	var page answer
	for i := 0; i < 50; i++ { // the first check runs in the background
		if page = anon.get("/verify"); strings.Contains(page.body, events.Hex(head.Hash)) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(page.body, "2 payloads erased") {
		t.Fatalf("/verify does not say 2 payloads erased:\n%s", page.body)
	}
	if a := anon.do("GET", "/verify", nil, "Accept", "application/json"); !strings.Contains(a.body, `"erased":2`) {
		t.Fatalf("/verify JSON: %s", a.body)
	}
	s.stop()

	dir := t.TempDir()
	file := filepath.Join(dir, "braid.jsonl")
	if code, _, errb := runWeb(t, "export", "--db", path, "-o", file); code != 0 {
		t.Fatalf("export: exit %d, %s", code, errb)
	}
	b, _ := os.ReadFile(file)
	lines := strings.SplitAfter(string(b), "\n")
	if !strings.Contains(lines[2], `"data":null`) || !strings.Contains(lines[2], `"erased_by":21`) || strings.Contains(lines[2], `"salt"`) ||
		!strings.Contains(lines[3], `"format":2,"salt":"`) {
		t.Fatalf("export lines 3 and 4:\n%s%s", lines[2], lines[3])
	}
	if code, out, errb := runWeb(t, "verify", "--file", file); code != 0 || firstLine(out) != want {
		t.Fatalf("verify --file: exit %d, %q (%s); want 0, %q", code, firstLine(out), errb, want)
	}
	if code, out := python(t, file); code != 0 || firstLine(out) != want {
		t.Fatalf("verify-export.py: exit %d, %q; want 0, %q", code, firstLine(out), want)
	}
	restored := filepath.Join(dir, "restored.db")
	if code, out, errb := runWeb(t, "import", file, "--db", restored); code != 0 || !strings.Contains(out, "imported 21 events") {
		t.Fatalf("import: exit %d, %q %q", code, out, errb)
	}
	if code, out, _ := runWeb(t, "verify", "--db", restored); code != 0 || firstLine(out) != want {
		t.Fatalf("verify of the restored database: exit %d, %q; want %q", code, firstLine(out), want)
	}
	if code, again, _ := runWeb(t, "export", "--db", restored); code != 0 || again != string(b) {
		t.Fatalf("export of the restored database differs from the export it came from")
	}

	for _, c := range []struct {
		name, from, to string
		line           int
		want           string
	}{
		{"erased commitment", `"commitment":"`, `"commitment":"0`, 3, "hash mismatch"},
		{"salt", `"salt":"`, `"salt":"1`, 4, "payload commitment mismatch"},
		{"erased_by", `"erased_by":21`, `"erased_by":20`, 3, "which is a thing_done event, not erased"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := append([]string(nil), lines...)
			l := strings.Replace(out[c.line-1], c.from, c.to, 1)
			if c.from != `"erased_by":21` {
				// keep 64 hex digits: drop the last one
				i := strings.Index(l, c.to) + len(c.to) + 63
				l = l[:i] + l[i+1:]
			}
			out[c.line-1] = l
			bad := filepath.Join(t.TempDir(), "bad.jsonl")
			os.WriteFile(bad, []byte(strings.Join(out, "")), 0o600)
			prefix := fmt.Sprintf("broken at position %d: ", c.line)
			gcode, gout, gerr := runWeb(t, "verify", "--file", bad)
			pcode, pout := python(t, bad)
			if gcode != 1 || pcode != 1 || !strings.HasPrefix(gout, prefix) || !strings.HasPrefix(pout, prefix) ||
				!strings.Contains(gout, c.want) || !strings.Contains(pout, c.want) {
				t.Fatalf("go: exit %d %q %s; python: exit %d %q; want 1 and %q…%s from both", gcode, firstLine(gout), gerr, pcode, firstLine(pout), prefix, c.want)
			}
		})
	}
}

// TestV1DatabaseKeepsVerifyingThenMigratesToV2: a database made by the
// code before braid v2 verifies read-only as it is, keeps working (new
// events are v2, old ones stay v1 and verify), and web migrate-v2 moves it
// to a v2 log that commits to the old head, leaving the old file untouched.
func TestV1DatabaseKeepsVerifyingThenMigratesToV2(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "oldstyle-3ec6999.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "braid.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	// Read-only, before any migration: the file has no payloads table.
	code, out, errb := runWeb(t, "verify", "--db", path)
	if code != 0 || !strings.HasPrefix(out, "intact: ") {
		t.Fatalf("verify of the old file as it is: exit %d, %q %s", code, firstLine(out), errb)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, src) {
		t.Fatalf("verify changed the old file")
	}
	old := countEvents(t, path)

	s := startServer(t, "--db", path)
	alice := newBrowser(t, s.URL)
	wantStatus(t, "alice signs in", alice.signIn("alice", "correct horse"), http.StatusSeeOther)
	alice.open("Written after the upgrade")
	if code := s.stop(); code != 0 {
		t.Fatalf("server exit %d", code)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v1, v2, v2data int
	db.QueryRow(`SELECT COUNT(*) FILTER (WHERE format = 1), COUNT(*) FILTER (WHERE format = 2), COUNT(*) FILTER (WHERE format = 2 AND data <> '')
		FROM events`).Scan(&v1, &v2, &v2data)
	if v1 != old || v2 == 0 || v2data != 0 {
		t.Fatalf("after the upgrade: %d v1 events (want %d), %d v2 (want > 0), %d v2 rows with data (want 0)", v1, old, v2, v2data)
	}
	var title string
	db.QueryRow(`SELECT json_extract(` + payloadData + `, '$.title') FROM events WHERE event_type = 'ticket_opened' AND format = 2`).Scan(&title)
	if title != "Written after the upgrade" {
		t.Fatalf("the new ticket's payload reads %q", title)
	}
	code, out, _ = runWeb(t, "verify", "--db", path)
	oldHead := firstLine(out)
	if code != 0 || !strings.HasPrefix(oldHead, fmt.Sprintf("intact: %d events, head ", v1+v2)) {
		t.Fatalf("verify after the upgrade: exit %d, %q", code, oldHead)
	}

	// migrate-v2: a new log, the old one untouched.
	before := sha256File(t, path)
	out2 := filepath.Join(t.TempDir(), "v2.db")
	code, out, errb = runWeb(t, "migrate-v2", "--db", path, "--out", out2)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("migrated %d events", v1+v2)) {
		t.Fatalf("migrate-v2: exit %d, %q %s", code, out, errb)
	}
	if sha256File(t, path) != before {
		t.Fatalf("migrate-v2 changed the old file")
	}
	code, out, _ = runWeb(t, "verify", "--db", out2)
	if code != 0 || !strings.HasPrefix(out, fmt.Sprintf("intact: %d events, head ", v1+v2+1)) {
		t.Fatalf("verify of the migrated log: exit %d, %q", code, firstLine(out))
	}
	ndb, err := sql.Open("sqlite", "file:"+out2)
	if err != nil {
		t.Fatal(err)
	}
	defer ndb.Close()
	first, err := events.Get(context.Background(), ndb, 1)
	if err != nil {
		t.Fatal(err)
	}
	var cont logContinued
	json.Unmarshal(first.Data, &cont)
	if first.Type != "log_continued" || first.AggregateType != "braid" || cont.Position != int64(v1+v2) || !strings.HasSuffix(oldHead, cont.Hash) || first.Format != 2 {
		t.Fatalf("position 1 of the new log: %s %s %+v (old head %q)", first.AggregateType, first.Type, cont, oldHead)
	}
	var notV2 int
	ndb.QueryRow(`SELECT COUNT(*) FROM events WHERE format <> 2`).Scan(&notV2)
	if notV2 != 0 {
		t.Fatalf("%d events of the new log are not v2", notV2)
	}
	for p := int64(1); p <= int64(v1+v2); p++ {
		o := loadEvent(t, db, p)
		n := loadEvent(t, ndb, p+1)
		if o.AggregateType != n.AggregateType || o.AggregateID != n.AggregateID || o.Version != n.Version || o.Type != n.Type ||
			o.Schema != n.Schema || o.Actor != n.Actor || o.OccurredAt != n.OccurredAt || o.CommandID != n.CommandID || !bytes.Equal(o.Data, n.Data) {
			t.Fatalf("old event %d is not new event %d:\n%+v\n%+v", p, p+1, o, n)
		}
	}
	// The projections were rebuilt: the site runs on the new file.
	s = startServer(t, "--db", out2)
	alice = newBrowser(t, s.URL)
	wantStatus(t, "alice signs in to the migrated site", alice.signIn("alice", "correct horse"), http.StatusSeeOther)
	if page := alice.get("/tickets/1").body; !strings.Contains(page, `@bob`) {
		t.Errorf("the old ticket on the migrated site does not name bob")
	}
	s.stop()
	if code, _, errb := runWeb(t, "migrate-v2", "--db", path, "--out", out2); code != 2 || !strings.Contains(errb, "exists") {
		t.Fatalf("migrate-v2 onto an existing file: exit %d, %q; want 2", code, errb)
	}

	// Straight from the old file as the old code left it (no migration
	// 0023 applied): read as it is, and left as it was.
	pristine := filepath.Join(t.TempDir(), "old.db")
	os.WriteFile(pristine, src, 0o600)
	out3 := filepath.Join(t.TempDir(), "v2.db")
	if code, out, errb := runWeb(t, "migrate-v2", "--db", pristine, "--out", out3); code != 0 || !strings.Contains(out, fmt.Sprintf("migrated %d events", old)) {
		t.Fatalf("migrate-v2 of the untouched old file: exit %d, %q %s", code, out, errb)
	}
	if b, _ := os.ReadFile(pristine); !bytes.Equal(b, src) {
		t.Fatalf("migrate-v2 changed the old file")
	}
	if code, out, _ := runWeb(t, "verify", "--db", out3); code != 0 || !strings.HasPrefix(out, fmt.Sprintf("intact: %d events", old+1)) {
		t.Fatalf("verify of the log migrated from the untouched file: exit %d, %q", code, firstLine(out))
	}
}

func sha256File(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func things(positions []int64) []erasedThing {
	out := make([]erasedThing, len(positions))
	for i, p := range positions {
		out[i] = erasedThing{p}
	}
	return out
}
