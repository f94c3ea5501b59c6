package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"braid/internal/events"
	"braid/migrations"
)

// personV1 is the payload of person_added as first shipped.
type personV1 struct {
	Name string `json:"name"`
}

// personV2 is the payload after the name was split in two.
type personV2 struct {
	First string `json:"first"`
	Last  string `json:"last"`
}

// splitName upcasts person_added from schema 1 to 2.
func splitName(data []byte) ([]byte, error) {
	var v1 personV1
	if err := json.Unmarshal(data, &v1); err != nil {
		return nil, err
	}
	first, last, _ := strings.Cut(v1.Name, " ")
	return json.Marshal(personV2{First: first, Last: last})
}

func TestUpcasterReadsOldPayloadsInNewShape(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "braid.db")

	// Release 1: person_added carries one name.
	db, err := events.Open(ctx, path, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	reg1 := events.NewRegistry()
	v1 := events.Define[personV1](reg1, "person_added", 1)
	w, err := events.NewWriter(ctx, db, reg1, events.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"Ada Lovelace", "Grace Hopper", "Alan Turing"}
	var stored []events.Event
	for i, n := range names {
		res, err := w.Do(ctx, events.Command{Actor: "system", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			return []events.Change{{AggregateType: "person", AggregateID: fmt.Sprint(i + 1), Expect: 0,
				Events: []events.Pending{v1.New(personV1{Name: n})}}}, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, res.Events...)
	}
	if got, want := string(stored[0].Data), `{"name":"Ada Lovelace"}`; got != want {
		t.Fatalf("schema 1 payload: got %s, want %s", got, want)
	}
	head := w.Head()
	w.Close()
	db.Close()

	// Release 2: schema 2 with an upcaster, and a projection that is new, so
	// it is built from the log when the writer starts.
	db, err = events.Open(ctx, path, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Write.ExecContext(ctx, `CREATE TABLE people_names (id TEXT PRIMARY KEY, first TEXT NOT NULL, last TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	reg2 := events.NewRegistry()
	v2 := events.Define[personV2](reg2, "person_added", 2, events.Upcaster{From: 1, Fn: splitName})
	p := reg2.NewProjection("people_names", "people_names")
	events.On(reg2, p, v2, func(ctx context.Context, q events.Querier, e *events.Event, d personV2) error {
		_, err := q.ExecContext(ctx, `INSERT INTO people_names (id, first, last) VALUES (?, ?, ?)`, e.AggregateID, d.First, d.Last)
		return err
	})
	w, err = events.NewWriter(ctx, db, reg2, events.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	// Decode gives the new shape.
	e, err := events.Get(ctx, db.Read, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v2.Decode(reg2, &e)
	if err != nil {
		t.Fatal(err)
	}
	if want := (personV2{First: "Ada", Last: "Lovelace"}); got != want {
		t.Fatalf("decoded schema 1 event: got %+v, want %+v", got, want)
	}

	// The projection built at start-up saw the new shape.
	rows, err := db.Read.QueryContext(ctx, `SELECT id, first, last FROM people_names ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var proj []string
	for rows.Next() {
		var id, first, last string
		if err := rows.Scan(&id, &first, &last); err != nil {
			t.Fatal(err)
		}
		proj = append(proj, id+":"+first+"/"+last)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(proj, " "), "1:Ada/Lovelace 2:Grace/Hopper 3:Alan/Turing"; got != want {
		t.Fatalf("people_names after catch-up: got %s, want %s", got, want)
	}

	// The stored events are untouched: same bytes, same schema, same braid.
	for _, s := range stored {
		e, err := events.Get(ctx, db.Read, s.Position)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(e.Data, s.Data) || e.Schema != 1 || e.Hash != s.Hash {
			t.Fatalf("event %d now schema %d %s hash %s, want schema 1 %s hash %s", e.Position, e.Schema, e.Data, events.Hex(e.Hash), s.Data, events.Hex(s.Hash))
		}
	}
	if r := mustVerify(t, db, int64(len(names))); r.Head != head {
		t.Fatalf("head after upgrade %d %s, want %d %s", r.Head.Position, events.Hex(r.Head.Hash), head.Position, events.Hex(head.Hash))
	}

	// New events are written in schema 2 and read through the same path.
	res, err := w.Do(ctx, events.Command{Actor: "system", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
		return []events.Change{{AggregateType: "person", AggregateID: "4", Expect: 0,
			Events: []events.Pending{v2.New(personV2{First: "Barbara", Last: "Liskov"})}}}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if e := res.Events[0]; e.Schema != 2 || string(e.Data) != `{"first":"Barbara","last":"Liskov"}` {
		t.Fatalf("new event: got schema %d %s, want schema 2 {\"first\":\"Barbara\",\"last\":\"Liskov\"}", e.Schema, e.Data)
	}
	var first string
	db.Read.QueryRowContext(ctx, `SELECT first FROM people_names WHERE id = '4'`).Scan(&first)
	if first != "Barbara" {
		t.Fatalf("projection of a schema 2 event: got first %q, want Barbara", first)
	}
	mustVerify(t, db, int64(len(names))+1)
}

func TestUpcastRefusesUnknownSchema(t *testing.T) {
	reg := events.NewRegistry()
	events.Define[personV1](reg, "person_added", 1)
	e := events.Event{Position: 7, Type: "person_added", Schema: 2, Data: []byte(`{"first":"Ada","last":"Lovelace"}`)}
	if _, err := reg.Upcast(&e); err == nil {
		t.Fatal("upcast of a schema newer than this build: got nil error, want one")
	}
}
