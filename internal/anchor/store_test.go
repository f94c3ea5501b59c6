package anchor_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"braid/internal/anchor"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/migrations"
)

// testLog is a real database with a writer and a one-type registry.
type testLog struct {
	db *events.DB
	w  *events.Writer
	t  events.Type[noted]
}

type noted struct {
	N int `json:"n"`
}

func newTestLog(tb testing.TB) *testLog {
	tb.Helper()
	ctx := context.Background()
	db, err := events.Open(ctx, filepath.Join(tb.TempDir(), "braid.db"), migrations.FS)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	reg := events.NewRegistry()
	t := events.Define[noted](reg, "note_taken", 1)
	w, err := events.NewWriter(ctx, db, reg, events.WriterOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { w.Close() })
	return &testLog{db: db, w: w, t: t}
}

// append adds one event and returns the new head.
func (l *testLog) append(tb testing.TB, n int) events.Head {
	tb.Helper()
	res, err := l.w.Do(context.Background(), events.Command{Actor: "tester", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
		return []events.Change{{AggregateType: "note", AggregateID: strconv.Itoa(n), Expect: 0,
			Events: []events.Pending{l.t.New(noted{N: n})}}}, nil
	}})
	if err != nil {
		tb.Fatal(err)
	}
	e := res.Events[len(res.Events)-1]
	return events.Head{Position: e.Position, Hash: e.Hash}
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t)
	h1 := testHead(1, "one")
	at := time.Date(2026, 11, 22, 10, 4, 5, 123456789, time.FixedZone("x", 3600))
	r := anchor.Receipt{Witness: "rfc3161", Data: []byte{0x30, 0x00, 0xff}, Details: map[string]string{"serial": "7"}}

	a, err := anchor.Record(ctx, l.db.Aux, h1, r, at)
	if err != nil {
		t.Fatal(err)
	}
	b, err := anchor.Record(ctx, l.db.Aux, testHead(2, "two"), anchor.Receipt{Witness: "evm", Data: []byte(`{}`)}, at.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got, err := anchor.Get(ctx, l.db.Read, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Head != h1 || string(got.Receipt.Data) != string(r.Data) || got.Receipt.Witness != "rfc3161" ||
		got.Receipt.Details["serial"] != "7" || !got.AnchoredAt.Equal(at) || got.AnchoredAt.Location() != time.UTC {
		t.Fatalf("get: got %+v, want %+v at %v UTC", got, r, at)
	}
	var stored string
	if err := l.db.Read.QueryRowContext(ctx, `SELECT anchored_at FROM anchors WHERE id = ?`, a.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if want := "2026-11-22T09:04:05.123456789Z"; stored != want {
		t.Fatalf("anchored_at column: got %q, want %q", stored, want)
	}

	list, err := anchor.List(ctx, l.db.Read)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID || list[1].Receipt.Details == nil {
		t.Fatalf("list: got %+v, want anchors %d then %d", list, a.ID, b.ID)
	}
	last, err := anchor.Last(ctx, l.db.Read, "rfc3161")
	if err != nil || last.ID != a.ID {
		t.Fatalf("last rfc3161: got %+v %v, want anchor %d", last, err, a.ID)
	}

	if _, err := anchor.Get(ctx, l.db.Read, 99); errs.Code(err) != errs.NotFound {
		t.Fatalf("get missing: got %v, want not_found", err)
	}
	if _, err := anchor.Last(ctx, l.db.Read, "ots"); errs.Code(err) != errs.NotFound {
		t.Fatalf("last of an unused witness: got %v, want not_found", err)
	}
	if _, err := anchor.Record(ctx, l.db.Aux, events.Head{}, r, at); errs.Code(err) != errs.Invalid {
		t.Fatalf("record position 0: got %v, want invalid", err)
	}
	if _, err := anchor.Record(ctx, l.db.Aux, h1, anchor.Receipt{Witness: "evm"}, at); errs.Code(err) != errs.Invalid {
		t.Fatalf("record an empty receipt: got %v, want invalid", err)
	}
	if s := r.Summary(); s != "serial=7" {
		t.Fatalf("summary: got %q, want serial=7", s)
	}
}
