package anchor_test

import (
	"context"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"braid/internal/anchor"
	"braid/internal/anchor/anchortest"
	"braid/internal/events"
)

func TestCheckAll(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t)
	h1 := l.append(t, 1)
	h2 := l.append(t, 2)
	h3 := l.append(t, 3)
	tsa := anchortest.NewTSA(t, "Braid Test")
	tsaW := roots(t, tsa)
	evmW, _ := simChain(t)
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

	record := func(h events.Head, r anchor.Receipt) int64 {
		t.Helper()
		a, err := anchor.Record(ctx, l.db.Aux, h, r, at)
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	stamp := func(w anchor.Witness, h events.Head) anchor.Receipt {
		t.Helper()
		r, err := w.Anchor(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	good := record(h2, stamp(tsaW, h2))
	forged := testHead(3, "a head the log never had")
	forgedID := record(forged, stamp(tsaW, forged)) // a valid receipt, for a hash the log lacks
	beyond := testHead(99, "the future")
	beyondID := record(beyond, stamp(tsaW, beyond))
	swapped := record(h1, stamp(tsaW, h2)) // right hash, receipt for another head
	onChain := record(h3, stamp(evmW, h3))

	// A node that does not answer: the EVM receipt cannot be checked.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String()
	ln.Close()
	dead, err := anchor.DialEVM(ctx, deadURL)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()

	type want struct {
		ok, checked, unavailable bool
		reason                   string
	}
	for _, c := range []struct {
		name      string
		witnesses map[string]anchor.Witness
		want      map[int64]want
	}{
		{"with checkers", map[string]anchor.Witness{"rfc3161": tsaW, "evm": &anchor.EVM{Client: evmW.Client}}, map[int64]want{
			good:     {true, true, false, "receipt checked by rfc3161"},
			forgedID: {false, false, false, "anchored hash " + hexOf(forged) + ", log has " + hexOf(h3) + " at position 3"},
			beyondID: {false, false, false, "the log has no event at position 99"},
			swapped:  {false, false, false, "receipt does not check: rfc3161: token is over"},
			onChain:  {true, true, false, "receipt checked by evm"},
		}},
		{"without checkers", nil, map[int64]want{
			good:     {true, false, false, "receipt not checked: no --tsa-roots given"},
			forgedID: {false, false, false, "anchored hash"},
			beyondID: {false, false, false, "no event at position 99"},
			swapped:  {true, false, false, "receipt not checked: no --tsa-roots given"},
			onChain:  {true, false, false, "receipt not checked: no --rpc-url given"},
		}},
		{"node down", map[string]anchor.Witness{"evm": &anchor.EVM{Client: dead}}, map[int64]want{
			onChain: {false, false, true, "receipt could not be checked"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := anchor.CheckAll(ctx, l.db.Read, c.witnesses)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 5 {
				t.Fatalf("results: got %d, want 5", len(res))
			}
			for _, r := range res {
				w, ok := c.want[r.ID]
				if !ok {
					continue
				}
				if r.OK != w.ok || r.Checked != w.checked || r.Unavailable != w.unavailable || !strings.Contains(r.Reason, w.reason) {
					t.Errorf("anchor %d (%s at %d): got ok=%v checked=%v unavailable=%v %q, want ok=%v checked=%v unavailable=%v %q",
						r.ID, r.Witness, r.Position, r.OK, r.Checked, r.Unavailable, r.Reason, w.ok, w.checked, w.unavailable, w.reason)
				}
				if !r.AnchoredAt.Equal(at) {
					t.Errorf("anchor %d anchored at: got %v, want %v", r.ID, r.AnchoredAt, at)
				}
			}
		})
	}
}

func hexOf(h events.Head) string { return hex.EncodeToString(h.Hash[:]) }
