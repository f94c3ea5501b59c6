package events_test

import (
	"context"
	"fmt"
	"testing"

	"braid/internal/events"
)

// TestVerifyPoolAgreesWithOneStream tampers with a log long enough to be read
// in several chunks and checks that Verify on the reader pool (parallel
// scanners) and on one connection (one stream) report the same first failure.
func TestVerifyPoolAgreesWithOneStream(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const total = 10_000
	for c := range total / 1000 {
		_, err := f.w.Do(ctx, events.Command{Actor: "seed", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			var ch []events.Change
			for k := range 4 {
				x := events.Change{AggregateType: "counter", AggregateID: fmt.Sprintf("c%d", k), Expect: events.Any}
				for i := range 250 {
					x.Events = append(x.Events, f.bumped.New(bumped{By: c*1000 + i + 1}))
				}
				ch = append(ch, x)
			}
			return ch, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	head := f.w.Head()
	exec := func(t *testing.T, q string, args ...any) {
		t.Helper()
		if _, err := f.db.Aux.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Tampering is what the triggers exist to refuse: lift them for the test.
	exec(t, `DROP TRIGGER events_refuse_update`)
	exec(t, `DROP TRIGGER events_refuse_delete`)
	exec(t, `CREATE TABLE saved AS SELECT * FROM events WHERE 0`)
	exec(t, `CREATE TABLE saved_salt AS SELECT salt FROM payloads WHERE position = 7001`)
	exec(t, `CREATE TABLE saved_payload AS SELECT * FROM payloads WHERE position = 5001`)

	// Each case saves the rows it touches, tampers, checks, then restores.
	cases := []struct {
		name, save, tamper, restore string
		wantPos, wantEvents         int64
	}{
		{"intact", ``, ``, ``, 0, total},
		// A v2 payload lives in payloads: its commitment catches a change.
		{"payload changed", `0`, `UPDATE payloads SET data = data || ' ' WHERE position = 6001`,
			`UPDATE payloads SET data = substr(data, 1, length(data) - 1) WHERE position = 6001`, 6001, 6000},
		{"salt changed", `0`, `UPDATE payloads SET salt = zeroblob(32) WHERE position = 7001`,
			`UPDATE payloads SET salt = (SELECT salt FROM saved_salt) WHERE position = 7001`, 7001, 7000},
		{"payload row removed", `0`, `DELETE FROM payloads WHERE position = 5001`,
			`INSERT INTO payloads SELECT * FROM saved_payload`, 5001, 5000},
		{"actor changed", `position = 1`, `UPDATE events SET actor = 'mallory' WHERE position = 1`,
			`UPDATE events SET actor = (SELECT actor FROM saved) WHERE position = 1`, 1, 0},
		{"one event removed", `position = 4097`, `DELETE FROM events WHERE position = 4097`,
			`INSERT INTO events SELECT * FROM saved`, 4097, 4096},
		{"a whole chunk removed", `position > 4096 AND position <= 8192`, `DELETE FROM events WHERE position > 4096 AND position <= 8192`,
			`INSERT INTO events SELECT * FROM saved`, 4097, 4096},
		{"version changed", `position = 9999`, `UPDATE events SET version = version + 100000 WHERE position = 9999`,
			`UPDATE events SET version = (SELECT version FROM saved) WHERE position = 9999`, 9999, 9998},
		{"last event removed", `position = 10000`, `DELETE FROM events WHERE position = 10000`,
			`INSERT INTO events SELECT * FROM saved`, 0, total - 1},
	}
	conn, err := f.db.Read.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.tamper != "" {
				exec(t, `DELETE FROM saved`)
				exec(t, `INSERT INTO saved SELECT * FROM events WHERE `+tc.save)
				exec(t, tc.tamper)
				defer exec(t, tc.restore)
			}
			pool, err := events.Verify(ctx, f.db.Read)
			if err != nil {
				t.Fatal(err)
			}
			stream, err := events.Verify(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(pool.Failure) != fmt.Sprint(stream.Failure) || pool.Events != stream.Events || pool.Head != stream.Head {
				t.Fatalf("pool verify: got %d events, head %d, failure %v; want as one stream: %d events, head %d, failure %v",
					pool.Events, pool.Head.Position, pool.Failure, stream.Events, stream.Head.Position, stream.Failure)
			}
			var gotPos int64
			if pool.Failure != nil {
				gotPos = pool.Failure.Position
			}
			if gotPos != tc.wantPos || pool.Events != tc.wantEvents || pool.Intact != (tc.wantPos == 0) {
				t.Fatalf("got intact=%v failure at %d after %d events (%v), want failure at %d after %d", pool.Intact, gotPos, pool.Events, pool.Failure, tc.wantPos, tc.wantEvents)
			}
		})
	}
	if r := mustVerify(t, f.db, total); r.Head != head {
		t.Fatalf("head after restoring: got %d, want %d", r.Head.Position, head.Position)
	}
}
