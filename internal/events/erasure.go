package events

import "encoding/json"

// Erasure is the payload of an `erased` event: internal/erase appends it,
// and the projections of every package that shows erasable text read it
// (through ErasedEvent), so they all decode one shape.
type Erasure struct {
	Scope  string `json:"scope"`  // comment, ticket or person
	Target string `json:"target"` // ticket number, TICKET/COMMENT, or a person id
	// WithComments: a ticket's comments were erased with it.
	WithComments bool             `json:"with_comments,omitempty"`
	Positions    []ErasedPosition `json:"positions"`
	// Tickets are the tickets whose current title and description came
	// from an erased payload (so their pages now show the erasure).
	Tickets []int64 `json:"tickets,omitempty"`
	Reason  string  `json:"reason"`
	ByRole  string  `json:"by_role"`
}

// ErasedPosition is one erased payload: where it is, what it was, and
// what of it is kept (its payload without the personal fields).
type ErasedPosition struct {
	Position  int64           `json:"position"`
	Type      string          `json:"type"`
	Aggregate string          `json:"aggregate"` // the event's aggregate type/id
	Kept      json.RawMessage `json:"kept"`
}

// KeptInto decodes the kept remnant into v; fields it does not hold stay
// as they are.
func (p ErasedPosition) KeptInto(v any) { _ = json.Unmarshal(p.Kept, v) }

// ErasedEvent is the erased event type, for projections' handlers
// (internal/erase defines it in the registry, first).
var ErasedEvent = Type[Erasure]{Name: ErasedType, Schema: 1}
