package events

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
)

// Upcaster turns a payload of schema From into the shape of schema From+1.
// Old events are never rewritten: upcasters run when an event is read.
type Upcaster struct {
	From int
	Fn   func(data []byte) ([]byte, error)
}

// Type describes one event type: the stable stored name, the Go payload
// type T and the current schema number. Values are immutable; build them
// with Define.
type Type[T any] struct {
	Name   string
	Schema int
}

// Pending is an event a command wants to append, before the writer gives it
// a position, version and hash.
type Pending struct {
	Type   string
	Schema int
	Data   []byte
}

// New encodes payload as a pending event of this type.
func (t Type[T]) New(payload T) Pending {
	b, err := json.Marshal(payload)
	if err != nil {
		// Payload types are plain structs of strings and numbers; a failure
		// here is a programming error caught by the first test.
		panic(fmt.Sprintf("encode %s: %v", t.Name, err))
	}
	return Pending{Type: t.Name, Schema: t.Schema, Data: b}
}

// Decode upcasts e's payload to the current schema and decodes it.
func (t Type[T]) Decode(r *Registry, e *Event) (T, error) {
	var v T
	data, err := r.Upcast(e)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("decode %s at position %d: %w", e.Type, e.Position, err)
	}
	return v, nil
}

// Handler applies one event to one projection's tables. It must only write
// read tables and must be deterministic: replay runs the same function.
type Handler func(ctx context.Context, q Querier, e *Event) error

// handler is a Handler that shares the decoded payload between the
// projections applying one event, so a payload is decoded once.
type handler func(ctx context.Context, q Querier, e *Event, memo *any) error

// Projection is a named set of read tables built from the log.
type Projection struct {
	Name     string
	Tables   []string // the tables it owns, rebuilt by replay
	handlers map[string]handler
}

type typeInfo struct {
	name      string
	schema    int
	upcasters map[int]Upcaster
}

// Registry is the explicit list of event types and projections. It is a
// value built at start-up; nothing is found by reflection or by name magic.
type Registry struct {
	types       map[string]*typeInfo
	projections []*Projection
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{types: map[string]*typeInfo{}} }

// Define registers an event type with payload T, its current schema and the
// upcasters that bring older payloads up to it.
func Define[T any](r *Registry, name string, schema int, ups ...Upcaster) Type[T] {
	if _, dup := r.types[name]; dup {
		panic("events: type defined twice: " + name)
	}
	ti := &typeInfo{name: name, schema: schema, upcasters: map[int]Upcaster{}}
	for _, u := range ups {
		ti.upcasters[u.From] = u
	}
	for s := 1; s < schema; s++ {
		if _, ok := ti.upcasters[s]; !ok {
			panic(fmt.Sprintf("events: %s schema %d has no upcaster to %d", name, s, s+1))
		}
	}
	r.types[name] = ti
	return Type[T]{Name: name, Schema: schema}
}

// NewProjection registers a projection owning tables.
func (r *Registry) NewProjection(name string, tables ...string) *Projection {
	for _, p := range r.projections {
		if p.Name == name {
			panic("events: projection defined twice: " + name)
		}
	}
	p := &Projection{Name: name, Tables: tables, handlers: map[string]handler{}}
	r.projections = append(r.projections, p)
	return p
}

// On makes p apply events of type t with fn, given the decoded payload.
func On[T any](r *Registry, p *Projection, t Type[T], fn func(ctx context.Context, q Querier, e *Event, data T) error) {
	if _, ok := r.types[t.Name]; !ok {
		panic("events: projection " + p.Name + " handles undefined type " + t.Name)
	}
	p.handlers[t.Name] = func(ctx context.Context, q Querier, e *Event, memo *any) error {
		v, ok := (*memo).(T)
		if !ok {
			var err error
			if v, err = t.Decode(r, e); err != nil {
				return err
			}
			*memo = v
		}
		return fn(ctx, q, e, v)
	}
}

// Projections returns the registered projections in registration order.
func (r *Registry) Projections() []*Projection { return r.projections }

// Projection returns the projection named name, or nil.
func (r *Registry) Projection(name string) *Projection {
	for _, p := range r.projections {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Known reports whether the event type is registered.
func (r *Registry) Known(name string) bool { _, ok := r.types[name]; return ok }

// TypeNames lists registered event types, sorted.
func (r *Registry) TypeNames() []string {
	var out []string
	for n := range r.types {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Upcast returns e's payload in the current schema of its type.
func (r *Registry) Upcast(e *Event) ([]byte, error) {
	ti, ok := r.types[e.Type]
	if !ok {
		return nil, fmt.Errorf("unknown event type %q at position %d", e.Type, e.Position)
	}
	data := e.Data
	if e.Schema > ti.schema || e.Schema < 1 {
		return nil, fmt.Errorf("%s at position %d has schema %d; this build knows 1..%d", e.Type, e.Position, e.Schema, ti.schema)
	}
	for s := e.Schema; s < ti.schema; s++ {
		var err error
		if data, err = ti.upcasters[s].Fn(data); err != nil {
			return nil, fmt.Errorf("upcast %s at position %d from schema %d: %w", e.Type, e.Position, s, err)
		}
	}
	return data, nil
}

// Apply runs every projection's handler for e.
func (r *Registry) Apply(ctx context.Context, q Querier, e *Event) error {
	var memo any
	for _, p := range r.projections {
		if err := p.apply(ctx, q, e, &memo); err != nil {
			return err
		}
	}
	return nil
}

// Apply runs p's handler for e, if it has one.
func (p *Projection) Apply(ctx context.Context, q Querier, e *Event) error {
	var memo any
	return p.apply(ctx, q, e, &memo)
}

func (p *Projection) apply(ctx context.Context, q Querier, e *Event, memo *any) error {
	h, ok := p.handlers[e.Type]
	if !ok {
		return nil
	}
	if err := h(ctx, q, e, memo); err != nil {
		return fmt.Errorf("projection %s, %s at position %d: %w", p.Name, e.Type, e.Position, err)
	}
	return nil
}
