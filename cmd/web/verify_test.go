package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"braid/internal/events"
	"braid/migrations"
)

type thingDone struct {
	N    int    `json:"n"`
	Note string `json:"note"`
}

// seedLog creates a database with n events (n a multiple of 4) through the
// real writer: commands of four events over two aggregates each.
func seedLog(tb testing.TB, n int) (string, events.Head) {
	tb.Helper()
	ctx := context.Background()
	path := filepath.Join(tb.TempDir(), "braid.db")
	db, err := events.Open(ctx, path, migrations.FS)
	if err != nil {
		tb.Fatal(err)
	}
	reg := events.NewRegistry()
	typ := events.Define[thingDone](reg, "thing_done", 1)
	w, err := events.NewWriter(ctx, db, reg, events.WriterOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < n/4; i++ {
		_, err := w.Do(ctx, events.Command{Actor: fmt.Sprintf("user%d", i%3), Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			return []events.Change{
				{AggregateType: "thing", AggregateID: fmt.Sprint(i % 5), Expect: events.Any, Events: []events.Pending{typ.New(thingDone{N: i, Note: "first"}), typ.New(thingDone{N: i, Note: "second ü"})}},
				{AggregateType: "other", AggregateID: fmt.Sprint(i % 3), Expect: events.Any, Events: []events.Pending{typ.New(thingDone{N: i}), typ.New(thingDone{N: -i})}},
			}, nil
		}})
		if err != nil {
			tb.Fatal(err)
		}
	}
	head := w.Head()
	w.Close()
	db.Close()
	return path, head
}

// tampered copies the database at path, drops the triggers that guard the
// log in the copy and lets fn change it.
func tampered(tb testing.TB, path string, fn func(db *sql.DB)) string {
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
	db.SetMaxOpenConns(1)
	mustExec(tb, db, `DROP TRIGGER events_refuse_update`, `DROP TRIGGER events_refuse_delete`)
	fn(db)
	return cp
}

func mustExec(tb testing.TB, db *sql.DB, stmts ...string) {
	tb.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			tb.Fatalf("%s: %v", s, err)
		}
	}
}

func loadEvent(tb testing.TB, db *sql.DB, pos int64) events.Event {
	tb.Helper()
	e, err := events.Get(context.Background(), db, pos)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func writeEvent(tb testing.TB, db *sql.DB, at int64, e events.Event) {
	tb.Helper()
	// A v2 row keeps data '' (its payload is in payloads, unchanged).
	_, err := db.Exec(`UPDATE events SET position = ?, aggregate_type = ?, aggregate_id = ?, version = ?, event_type = ?, schema = ?,
		actor = ?, occurred_at = ?, command_id = ?, data = iif(format = 2, '', ?), parent_hash = ?, hash = ? WHERE position = ?`,
		e.Position, e.AggregateType, e.AggregateID, e.Version, e.Type, e.Schema, e.Actor, e.OccurredAt, e.CommandID,
		string(e.Data), e.ParentHash[:], e.Hash[:], at)
	if err != nil {
		tb.Fatal(err)
	}
}

// rewriteTail changes the events from position from on with change and
// recomputes every hash after, as a forger who controls the whole database
// would: the braid alone then looks intact.
func rewriteTail(tb testing.TB, db *sql.DB, from, head int64, change func(e *events.Event)) {
	tb.Helper()
	parent := loadEvent(tb, db, from-1).Hash
	for p := from; p <= head; p++ {
		e := loadEvent(tb, db, p)
		change(&e)
		e.ParentHash = parent
		e.Hash = e.ComputeHash()
		writeEvent(tb, db, p, e)
		parent = e.Hash
	}
}

// runWeb runs the program and returns its exit code, stdout and stderr.
func runWeb(tb testing.TB, args ...string) (int, string, string) {
	tb.Helper()
	var out, errb strings.Builder
	code := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func TestVerifyIntactDatabase(t *testing.T) {
	path, head := seedLog(t, 40)
	code, out, errb := runWeb(t, "verify", "--db", path)
	want := fmt.Sprintf("intact: 40 events, head %s", events.Hex(head.Hash))
	if code != 0 || firstLine(out) != want {
		t.Fatalf("verify: exit %d, first line %q (stderr %q); want 0, %q", code, firstLine(out), errb, want)
	}
	if !strings.Contains(out, "with `web anchor`") {
		t.Fatalf("verify does not say that nothing is anchored:\n%s", out)
	}

	code, out, _ = runWeb(t, "verify", "--db", path, "--json")
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("verify --json: exit %d, %v in %q", code, err, out)
	}
	if got["intact"] != true || got["events"] != 40.0 || got["head"] != events.Hex(head.Hash) || got["failure"] != nil {
		t.Fatalf("verify --json: got %v, want intact, 40 events, head %s, failure null", got, events.Hex(head.Hash))
	}
	if a, ok := got["anchors"].([]any); !ok || len(a) != 0 {
		t.Fatalf("verify --json anchors: got %#v, want []", got["anchors"])
	}

	if code, _, errb := runWeb(t, "verify", "--db", filepath.Join(t.TempDir(), "missing.db")); code != 2 || !strings.Contains(errb, "no database") {
		t.Fatalf("verify of a missing database: exit %d, stderr %q; want 2", code, errb)
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	path, head := seedLog(t, 40)
	const k = 21
	anchorHead := func(db *sql.DB) {
		if _, err := db.Exec(`INSERT INTO anchors (position, hash, witness, receipt, anchored_at) VALUES (?, ?, 'test', x'', '2026-11-22T10:00:00Z')`, head.Position, head.Hash[:]); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name     string
		tamper   func(db *sql.DB)
		wantCode int
		wantLine string // prefix of the first line
	}{
		{"payload bytes", func(db *sql.DB) {
			mustExec(t, db, fmt.Sprintf(`UPDATE payloads SET data = replace(data, '"n":', '"n": ') WHERE position = %d`, k))
		},
			1, fmt.Sprintf("broken at position %d: payload commitment mismatch", k)},
		{"salt", func(db *sql.DB) {
			mustExec(t, db, fmt.Sprintf(`UPDATE payloads SET salt = zeroblob(32) WHERE position = %d`, k))
		},
			1, fmt.Sprintf("broken at position %d: payload commitment mismatch", k)},
		{"payload row deleted", func(db *sql.DB) {
			mustExec(t, db, fmt.Sprintf(`DELETE FROM payloads WHERE position = %d`, k))
		},
			1, fmt.Sprintf("broken at position %d: v2 payload missing", k)},
		{"actor", func(db *sql.DB) {
			mustExec(t, db, fmt.Sprintf(`UPDATE events SET actor = 'mallory' WHERE position = %d`, k))
		},
			1, fmt.Sprintf("broken at position %d: hash mismatch", k)},
		{"time", func(db *sql.DB) {
			mustExec(t, db, fmt.Sprintf(`UPDATE events SET occurred_at = '2020-01-01T00:00:00.000000000Z' WHERE position = %d`, k))
		}, 1, fmt.Sprintf("broken at position %d: hash mismatch", k)},
		{"type", func(db *sql.DB) {
			mustExec(t, db, fmt.Sprintf(`UPDATE events SET event_type = 'thing_undone' WHERE position = %d`, k))
		},
			1, fmt.Sprintf("broken at position %d: hash mismatch", k)},
		{"hash", func(db *sql.DB) {
			mustExec(t, db, fmt.Sprintf(`UPDATE events SET hash = zeroblob(32) WHERE position = %d`, k))
		},
			1, fmt.Sprintf("broken at position %d: hash mismatch", k)},
		{"parent hash", func(db *sql.DB) {
			mustExec(t, db, fmt.Sprintf(`UPDATE events SET parent_hash = zeroblob(32) WHERE position = %d`, k))
		},
			1, fmt.Sprintf("broken at position %d: parent hash mismatch", k)},
		{"deleted event", func(db *sql.DB) { mustExec(t, db, fmt.Sprintf(`DELETE FROM events WHERE position = %d`, k)) },
			1, fmt.Sprintf("broken at position %d: position gap: expected position %d, found %d", k, k, k+1)},
		{"deleted tail", func(db *sql.DB) {
			anchorHead(db)
			mustExec(t, db, fmt.Sprintf(`DELETE FROM events WHERE position >= %d`, k))
		}, 1, fmt.Sprintf("broken at position %d: anchor #1 (witness test) expected hash %s, found none", head.Position, events.Hex(head.Hash))},
		{"two events swapped", func(db *sql.DB) {
			mustExec(t, db, fmt.Sprintf(`UPDATE events SET position = -1 WHERE position = %d`, k),
				fmt.Sprintf(`UPDATE events SET position = %d WHERE position = %d`, k, k+1),
				fmt.Sprintf(`UPDATE events SET position = %d WHERE position = -1`, k+1))
		}, 1, fmt.Sprintf("broken at position %d: parent hash mismatch", k)},
		{"forged event inserted", func(db *sql.DB) {
			// Make room at k, then insert an event whose own hash is right.
			mustExec(t, db, fmt.Sprintf(`UPDATE events SET position = -position WHERE position >= %d`, k),
				`UPDATE events SET position = -position + 1 WHERE position < 0`)
			prev := loadEvent(t, db, k-1)
			f := events.Event{Position: k, AggregateType: "thing", AggregateID: "forged", Version: 1, Type: "thing_done", Schema: 1,
				Actor: "mallory", OccurredAt: prev.OccurredAt, CommandID: "forged", Data: []byte(`{"n":1,"note":"forged"}`), ParentHash: prev.Hash}
			f.Hash = f.ComputeHash()
			if _, err := db.Exec(`INSERT INTO events (position, aggregate_type, aggregate_id, version, event_type, schema, actor, occurred_at, command_id, data, parent_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
				f.Position, f.AggregateType, f.AggregateID, f.Version, f.Type, f.Schema, f.Actor, f.OccurredAt, f.CommandID, string(f.Data), f.ParentHash[:], f.Hash[:]); err != nil {
				t.Fatal(err)
			}
		}, 1, fmt.Sprintf("broken at position %d: parent hash mismatch", k+1)},
		{"version gap", func(db *sql.DB) {
			rewriteTail(t, db, k, head.Position, func(e *events.Event) {
				if e.Position == k {
					e.Version += 5
				}
			})
		}, 1, fmt.Sprintf("broken at position %d: version gap", k)},
		{"tail rewritten with fresh hashes, no anchor", func(db *sql.DB) {
			rewriteTail(t, db, k, head.Position, func(e *events.Event) { e.Actor = "mallory" })
		}, 0, "intact: 40 events, head "},
		{"tail rewritten with fresh hashes, head anchored", func(db *sql.DB) {
			anchorHead(db)
			rewriteTail(t, db, k, head.Position, func(e *events.Event) { e.Actor = "mallory" })
		}, 1, fmt.Sprintf("broken at position %d: anchor #1 (witness test) expected hash %s, found ", head.Position, events.Hex(head.Hash))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp := tampered(t, path, c.tamper)
			code, out, errb := runWeb(t, "verify", "--db", cp)
			if code != c.wantCode || !strings.HasPrefix(firstLine(out), c.wantLine) {
				t.Fatalf("exit %d, first line %q (stderr %q); want %d, %q…", code, firstLine(out), errb, c.wantCode, c.wantLine)
			}
			if c.wantCode == 0 && strings.Contains(firstLine(out), events.Hex(head.Hash)) {
				t.Fatalf("a rewritten tail kept the original head hash: the rewrite did nothing")
			}
			code, out, _ = runWeb(t, "verify", "--db", cp, "--json")
			var got struct {
				Intact  bool
				Failure *events.Failure
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil || code != c.wantCode || got.Intact != (c.wantCode == 0) {
				t.Fatalf("--json: exit %d, %v, %q; want exit %d", code, err, out, c.wantCode)
			}
			if got.Failure != nil && !strings.HasPrefix(fmt.Sprintf("broken at position %d: %s", got.Failure.Position, got.Failure.Reason), c.wantLine) {
				t.Fatalf("--json failure %+v does not match %q", got.Failure, c.wantLine)
			}
		})
	}
}

// payloadData is the SQL for an events row's payload in a test's query on
// events (unaliased): a braid v2 payload lives in payloads, a v1 one in
// events.data.
const payloadData = `COALESCE((SELECT p.data FROM payloads p WHERE p.position = events.position), events.data)`
