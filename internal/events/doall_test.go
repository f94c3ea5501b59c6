package events_test

import (
	"context"
	"sync"
	"testing"

	"braid/internal/errs"
	"braid/internal/events"
)

// batches counts the writer's batches and the commands in each.
type batches struct {
	mu    sync.Mutex
	sizes []int
}

func (b *batches) Command(kind, outcome string) {}
func (b *batches) Batch(s events.BatchStats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.Committed {
		b.sizes = append(b.sizes, s.Commands)
	}
}

// DoAll runs its commands in one batch (one commit), each in its own
// savepoint: a refused one appends nothing, the others are appended next
// to each other, and each answer lines up with its command.
func TestDoAllOneBatch(t *testing.T) {
	obs := &batches{}
	f := newFixtureWith(t, events.WriterOptions{Observer: obs, Window: -1})
	ctx := context.Background()
	bump := func(id string, by int) events.Command {
		return events.Command{Actor: "tester", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if by <= 0 {
				return nil, errs.Field("by", "must be positive, got %d", by)
			}
			return []events.Change{{AggregateType: "counter", AggregateID: id, Expect: events.Any,
				Events: []events.Pending{f.bumped.New(bumped{By: by})}}}, nil
		}}
	}
	res, errl := f.w.DoAll(ctx, []events.Command{bump("a", 1), bump("b", -1), bump("c", 3), {ID: "not hex", Actor: "tester"}})
	if errl[0] != nil || errl[2] != nil {
		t.Fatalf("got errors %v, %v for the good commands, want none", errl[0], errl[2])
	}
	if errs.Code(errl[1]) != errs.Invalid || errs.Code(errl[3]) != errs.Invalid {
		t.Fatalf("got %v and %v for the bad commands, want both invalid", errl[1], errl[3])
	}
	if len(res[1].Events) != 0 || len(res[0].Events) != 1 || len(res[2].Events) != 1 {
		t.Fatalf("got %d, %d, %d events, want 1, 0, 1", len(res[0].Events), len(res[1].Events), len(res[2].Events))
	}
	if a, c := res[0].Events[0], res[2].Events[0]; a.AggregateID != "a" || c.AggregateID != "c" || c.Position != a.Position+1 {
		t.Fatalf("got %s@%d and %s@%d, want a then c at the next position", a.AggregateID, a.Position, c.AggregateID, c.Position)
	}
	obs.mu.Lock()
	sizes := append([]int(nil), obs.sizes...)
	obs.mu.Unlock()
	if len(sizes) != 1 || sizes[0] != 3 {
		t.Fatalf("got committed batches of %v commands, want one batch of 3", sizes)
	}
	mustVerify(t, f.db, 2)
}
