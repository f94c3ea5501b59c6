package events

import (
	"context"
	"path/filepath"
	"testing"

	"braid/internal/errs"
	"braid/migrations"
)

// A read-only database answers every write with errs.Unavailable and says
// so in Health, until it is writable again. The pragma is set through the
// writer and undone on its connection directly: under query_only even the
// writer's BEGIN IMMEDIATE fails, so Exclusive could not undo it.
func TestReadOnlyDatabaseAnswersUnavailable(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "braid.db"), migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := NewRegistry()
	typ := Define[struct{}](reg, "thing_done", 1)
	w, err := NewWriter(ctx, db, reg, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	do := func() error {
		_, err := w.Do(ctx, Command{Actor: "t", Decide: func(ctx context.Context, tx *Tx) ([]Change, error) {
			return []Change{{AggregateType: "thing", AggregateID: "1", Expect: Any, Events: []Pending{typ.New(struct{}{})}}}, nil
		}})
		return err
	}
	if err := do(); err != nil {
		t.Fatal(err)
	}
	if err := w.Exclusive(ctx, func(ctx context.Context, q Querier) error {
		_, err := q.ExecContext(ctx, "PRAGMA query_only = 1")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	err = do()
	if errs.Code(err) != errs.Unavailable || errs.Message(err) != "The server cannot write: the database is read-only. Nothing was saved." {
		t.Fatalf("write to a read-only database: got %v (%q), want unavailable, read-only", err, errs.Message(err))
	}
	if h := w.Health(); h == nil || h.Error() != "database read-only" {
		t.Fatalf("health: got %v, want database read-only", h)
	}
	// The writer goroutine is idle (nothing queued), so the connection is free.
	if _, err := w.conn.ExecContext(ctx, "PRAGMA query_only = 0"); err != nil {
		t.Fatal(err)
	}
	if err := do(); err != nil {
		t.Fatalf("write once writable again: %v", err)
	}
	if h := w.Health(); h != nil {
		t.Fatalf("health after a committed batch: %v", h)
	}
	if h, _ := ReadHead(ctx, db.Read); h.Position != 2 {
		t.Fatalf("head at %d, want 2", h.Position)
	}
}
