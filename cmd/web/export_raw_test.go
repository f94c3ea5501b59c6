package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"braid/internal/events"
)

// appendRaw appends es to the log at path as the writer would (each hashed
// and linked to the one before), bypassing every check on their fields:
// a log that already holds what validation now refuses.
func appendRaw(tb testing.TB, path string, es ...events.Event) events.Head {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var head int64
	if err := db.QueryRow(`SELECT COALESCE(MAX(position), 0) FROM events`).Scan(&head); err != nil {
		tb.Fatal(err)
	}
	parent := loadEvent(tb, db, head).Hash
	for _, e := range es {
		head++
		e.Position, e.ParentHash = head, parent
		e.Hash = e.ComputeHash()
		if _, err := db.Exec(`INSERT INTO events (position, aggregate_type, aggregate_id, version, event_type, schema, actor, occurred_at, command_id, data, parent_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
			e.Position, e.AggregateType, e.AggregateID, e.Version, e.Type, e.Schema, e.Actor, e.OccurredAt, e.CommandID, string(e.Data), e.ParentHash[:], e.Hash[:]); err != nil {
			tb.Fatal(err)
		}
		parent = e.Hash
	}
	return events.Head{Position: head, Hash: parent}
}

// rawRows returns every row of the log as the exact bytes of each column.
func rawRows(tb testing.TB, path string) [][]string {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT position, CAST(aggregate_type AS BLOB), CAST(aggregate_id AS BLOB), version, CAST(event_type AS BLOB), schema,
		CAST(actor AS BLOB), CAST(occurred_at AS BLOB), CAST(command_id AS BLOB), CAST(data AS BLOB), parent_hash, hash FROM events ORDER BY position`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		r := make([][]byte, 12)
		ptrs := make([]any, 12)
		for i := range r {
			ptrs[i] = &r[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			tb.Fatal(err)
		}
		row := make([]string, 12)
		for i := range r {
			row[i] = string(r[i])
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestExportEscapesBytesThatAreNotUTF8(t *testing.T) {
	path, _ := seedLog(t, 8)
	at := "2026-11-22T10:04:05.123456789Z"
	head := appendRaw(t, path,
		events.Event{AggregateType: "thing", AggregateID: "odd", Version: 1, Type: "thing_done", Schema: 1, Actor: "user1",
			OccurredAt: at, CommandID: "\xff", Data: []byte(`{"n":1,"note":"fine"}`)},
		events.Event{AggregateType: "thing", AggregateID: "odd", Version: 2, Type: "thing_done", Schema: 1, Actor: "user\xc3",
			OccurredAt: at, CommandID: "c2", Data: []byte("{\"n\":2,\"note\":\"half \xe2\x82 a euro \xed\xa0\x80\"}")},
	)
	want := fmt.Sprintf("intact: 10 events, head %s", events.Hex(head.Hash))
	if code, out, errb := runWeb(t, "verify", "--db", path); code != 0 || firstLine(out) != want {
		t.Fatalf("verify of the database: exit %d, %q (%s); want 0, %q", code, firstLine(out), errb, want)
	}

	file := filepath.Join(t.TempDir(), "braid.jsonl")
	if code, _, errb := runWeb(t, "export", "--db", path, "-o", file); code != 0 {
		t.Fatalf("export: exit %d, %s; want 0", code, errb)
	}
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for i, wantRaw := range map[int]string{8: `"raw":{"command_id":"/w=="}`, 9: `"raw":{"actor":"dXNlcsM=","data":`} {
		if !strings.Contains(lines[i], wantRaw) {
			t.Fatalf("line %d: got %s, want it to carry %s", i+1, lines[i], wantRaw)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v", i+1, err)
		}
	}
	if strings.Contains(lines[7], `"raw"`) {
		t.Fatalf("line 8 carries raw though every value is UTF-8: %s", lines[7])
	}
	if code, out, errb := runWeb(t, "verify", "--file", file); code != 0 || firstLine(out) != want {
		t.Fatalf("verify --file: exit %d, %q (%s); want 0, %q", code, firstLine(out), errb, want)
	}
	if code, out := python(t, file); code != 0 || firstLine(out) != want {
		t.Fatalf("verify-export.py: exit %d, %q; want 0, %q", code, firstLine(out), want)
	}

	// A readable value that does not match its raw bytes is not an event.
	forged := filepath.Join(t.TempDir(), "forged.jsonl")
	os.WriteFile(forged, bytes.Replace(b, []byte(`"actor":"user\ufffd"`), []byte(`"actor":"user1"`), 1), 0o600)
	if code, _, errb := runWeb(t, "verify", "--file", forged); code != 2 || !strings.Contains(errb, "line 10") {
		t.Fatalf("verify --file of a misleading readable value: exit %d, %q; want 2 naming line 10", code, errb)
	}
	if code, _ := python(t, forged); code != 2 {
		t.Fatalf("verify-export.py of a misleading readable value: exit %d, want 2", code)
	}

	restored := filepath.Join(t.TempDir(), "restored.db")
	if code, out, errb := runWeb(t, "import", file, "--db", restored); code != 0 {
		t.Fatalf("import: exit %d, %q %q; want 0", code, out, errb)
	}
	if code, out, _ := runWeb(t, "verify", "--db", restored); code != 0 || firstLine(out) != want {
		t.Fatalf("verify of the restored database: exit %d, %q; want 0, %q", code, firstLine(out), want)
	}
	got, orig := rawRows(t, restored), rawRows(t, path)
	if len(got) != len(orig) {
		t.Fatalf("restored %d rows, want %d", len(got), len(orig))
	}
	for i := range orig {
		for j := range orig[i] {
			if got[i][j] != orig[i][j] {
				t.Fatalf("row %d column %d: restored %q, want %q", i+1, j, got[i][j], orig[i][j])
			}
		}
	}
	if code, again, _ := runWeb(t, "export", "--db", restored); code != 0 || again != string(b) {
		t.Fatalf("export of the restored database: exit %d, differs from the export it came from: %v", code, again != string(b))
	}
}
