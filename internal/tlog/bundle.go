package tlog

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"braid/internal/events"
)

// BundleFormat names the proof bundle format (docs/braid.md).
const BundleFormat = "braid-proof-bundle/v1"

// Bundle is the events of one aggregate, each with its inclusion proof in
// the tree of a signed checkpoint: checked offline in O(k log n) with the
// log's verifier key alone.
type Bundle struct {
	Format        string        `json:"format"`
	AggregateType string        `json:"aggregate_type"`
	AggregateID   string        `json:"aggregate_id"`
	Checkpoint    string        `json:"checkpoint"` // the signed note, as GET /checkpoint serves it; witness cosignatures are further signature lines
	VKey          string        `json:"vkey"`       // the log's verifier key, for convenience: pin your own
	Events        []BundleEvent `json:"events"`
}

// BundleEvent is one event's export line and the inclusion proof of its
// leaf (index position-1) in the checkpoint's tree.
type BundleEvent struct {
	Event json.RawMessage `json:"event"`
	Proof []string        `json:"proof"` // standard base64
}

// BuildBundle returns the bundle of the aggregate's events in the tree of
// cp, signed by the log whose verifier key is vkey. ErrNotFound when
// the aggregate has no event in it.
func BuildBundle(ctx context.Context, q events.Querier, cp Checkpoint, vkey, aggType, aggID string) (Bundle, error) {
	b := Bundle{Format: BundleFormat, AggregateType: aggType, AggregateID: aggID, Checkpoint: cp.Note, VKey: vkey}
	evs, err := events.Aggregate(ctx, q, aggType, aggID, cp.Size)
	if err != nil {
		return b, err
	}
	if len(evs) == 0 {
		return b, ErrNotFound
	}
	r := Reader{Ctx: ctx, Q: q}
	for _, e := range evs {
		line, err := e.MarshalJSON()
		if err != nil {
			return b, err
		}
		p, err := xtlog.ProveRecord(cp.Size, e.Position-1, r)
		if err != nil {
			return b, fmt.Errorf("proof of event %d: %w", e.Position, err)
		}
		be := BundleEvent{Event: line, Proof: make([]string, len(p))}
		for i, h := range p {
			be.Proof[i] = base64.StdEncoding.EncodeToString(h[:])
		}
		b.Events = append(b.Events, be)
	}
	return b, nil
}

// BundleCheck is what VerifyBundle found in a bundle that could be read.
type BundleCheck struct {
	OK       bool
	Origin   string
	Size     int64
	Root     Hash
	Events   int
	Problem  string   // the first problem, naming the event
	Position int64    // the event the problem is with, 0 when none
	Cosigned []string // the witnesses whose cosignature was checked
}

// VerifyBundle checks a proof bundle offline: the checkpoint opens with
// verifier, every event's braid hash recomputes from its fields, it
// belongs to the bundle's aggregate, versions run 1, 2, … with no gap, and
// its leaf is in the checkpoint's tree by its proof. An error means the
// bundle could not be read; a refused one is a BundleCheck with OK false.
//
// Each of witnesses (cosignature/v1 verifiers, NewCosignatureVerifier)
// must have cosigned the checkpoint: its cosignature is a signature line
// of the checkpoint note, after the log's (C2SP tlog-cosignature).
func VerifyBundle(data []byte, verifier note.Verifier, witnesses ...note.Verifier) (BundleCheck, error) {
	var c BundleCheck
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return c, fmt.Errorf("not a proof bundle: %v", err)
	}
	if b.Format != BundleFormat {
		return c, fmt.Errorf("format %q, want %q", b.Format, BundleFormat)
	}
	n, err := note.Open([]byte(b.Checkpoint), note.VerifierList(append([]note.Verifier{verifier}, witnesses...)...))
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &invalid) && invalid.Name != verifier.Name():
		c.Problem = fmt.Sprintf("the cosignature of witness %s on the checkpoint is invalid", invalid.Name)
		return c, nil
	case err != nil:
		c.Problem = fmt.Sprintf("the checkpoint does not open with key %s: %v", verifier.Name(), err)
		return c, nil
	}
	signed := map[string]bool{}
	for _, s := range n.Sigs {
		signed[fmt.Sprintf("%s+%08x", s.Name, s.Hash)] = true
	}
	if !signed[fmt.Sprintf("%s+%08x", verifier.Name(), verifier.KeyHash())] {
		c.Problem = fmt.Sprintf("the checkpoint does not open with key %s: it is not signed by it", verifier.Name())
		return c, nil
	}
	for _, w := range witnesses {
		if !signed[fmt.Sprintf("%s+%08x", w.Name(), w.KeyHash())] {
			c.Problem = fmt.Sprintf("the checkpoint carries no cosignature by witness %s", w.Name())
			return c, nil
		}
		c.Cosigned = append(c.Cosigned, w.Name())
	}
	origin, h, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		c.Problem = err.Error()
		return c, nil
	}
	c.Origin, c.Size, c.Root = origin, h.Size, h.Root
	if origin != verifier.Name() {
		c.Problem = fmt.Sprintf("the checkpoint's origin %q is not the key's name %q", origin, verifier.Name())
		return c, nil
	}
	if len(b.Events) == 0 {
		c.Problem = "the bundle holds no event"
		return c, nil
	}
	for i, be := range b.Events {
		var e events.Event
		err := events.ReadExport(bytes.NewReader(append(bytes.Clone(be.Event), '\n')), func(_ int64, got *events.Event) error {
			e = *got
			return nil
		})
		if err != nil {
			c.Problem = fmt.Sprintf("event %d of the bundle: %v", i+1, err)
			return c, nil
		}
		c.Position = e.Position
		switch {
		case !e.HashOK():
			c.Problem = fmt.Sprintf("event at position %d: its hash is not the braid hash of its fields (tampered)", e.Position)
		case e.AggregateType != b.AggregateType || e.AggregateID != b.AggregateID:
			c.Problem = fmt.Sprintf("event at position %d is of %s %s, not %s %s", e.Position, e.AggregateType, e.AggregateID, b.AggregateType, b.AggregateID)
		case e.Version != int64(i)+1:
			c.Problem = fmt.Sprintf("event at position %d has version %d, want %d", e.Position, e.Version, i+1)
		case e.Position < 1 || e.Position > h.Size:
			c.Problem = fmt.Sprintf("event at position %d is beyond the checkpoint's tree of %d", e.Position, h.Size)
		}
		if c.Problem != "" {
			return c, nil
		}
		var proof xtlog.RecordProof
		for _, s := range be.Proof {
			p, err := base64.StdEncoding.Strict().DecodeString(s)
			if err != nil || len(p) != xtlog.HashSize {
				c.Problem = fmt.Sprintf("event at position %d: proof hash %q is not 32 bytes in base64", e.Position, s)
				return c, nil
			}
			proof = append(proof, Hash(p))
		}
		if err := xtlog.CheckRecord(proof, h.Size, h.Root, e.Position-1, LeafHash(e.Hash)); err != nil {
			c.Problem = fmt.Sprintf("event at position %d: its inclusion proof does not lead to the checkpoint's root: %v", e.Position, err)
			return c, nil
		}
		c.Events++
	}
	c.OK, c.Position = true, 0
	return c, nil
}
