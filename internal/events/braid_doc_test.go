package events_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"braid/internal/events"
)

// docExample is the worked example of docs/braid.md.
var docExample = events.Event{
	Position:      1,
	AggregateType: "user",
	AggregateID:   "ada",
	Version:       1,
	Type:          "user_registered",
	Schema:        1,
	Actor:         "ada",
	OccurredAt:    "2026-11-22T10:04:05.123456789Z",
	CommandID:     "7f3c0c1e9d2a4b6f8e1d2c3b4a596870",
	Data:          []byte(`{"username":"ada","display_name":"Ada Lovelace"}`),
}

// docBlock returns the lines of the fenced block between the markers
// <!-- name:begin --> and <!-- name:end --> in doc, fences dropped.
func docBlock(t *testing.T, doc, name string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "<!-- "+name+":begin -->")
	if !ok {
		t.Fatalf("docs/braid.md has no <!-- %s:begin --> marker", name)
	}
	block, _, ok := strings.Cut(rest, "<!-- "+name+":end -->")
	if !ok {
		t.Fatalf("docs/braid.md has no <!-- %s:end --> marker", name)
	}
	var out []string
	for _, l := range strings.Split(block, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "```") {
			continue
		}
		out = append(out, l)
	}
	return out
}

func TestBraidDocExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "braid.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	e := docExample

	// The annotated body: comment lines start with '#', the rest is hex.
	var hx strings.Builder
	for _, l := range docBlock(t, doc, "braid-example-body") {
		if !strings.HasPrefix(l, "#") {
			hx.WriteString(strings.Join(strings.Fields(l), ""))
		}
	}
	docBody, err := hex.DecodeString(hx.String())
	if err != nil {
		t.Fatalf("body in docs/braid.md is not hex: %v", err)
	}
	if got := e.Body(nil); !bytes.Equal(got, docBody) {
		t.Fatalf("body of the example:\n got %x\nwant %x (docs/braid.md)", got, docBody)
	}

	hashLines := docBlock(t, doc, "braid-example-hash")
	if len(hashLines) != 1 {
		t.Fatalf("hash block in docs/braid.md: got %d lines, want 1", len(hashLines))
	}
	docHash := hashLines[0]
	if got := events.Hex(e.ComputeHash()); got != docHash {
		t.Fatalf("hash of the example: got %s, want %s (docs/braid.md)", got, docHash)
	}

	// The export line decodes to the same event, and its hashes are right.
	lines := docBlock(t, doc, "braid-example-export")
	if len(lines) != 1 {
		t.Fatalf("export block in docs/braid.md: got %d lines, want 1", len(lines))
	}
	var x struct {
		Position      int64  `json:"position"`
		AggregateType string `json:"aggregate_type"`
		AggregateID   string `json:"aggregate_id"`
		Version       int64  `json:"version"`
		EventType     string `json:"event_type"`
		Schema        int    `json:"schema"`
		Actor         string `json:"actor"`
		OccurredAt    string `json:"occurred_at"`
		CommandID     string `json:"command_id"`
		Data          string `json:"data"`
		ParentHash    string `json:"parent_hash"`
		Hash          string `json:"hash"`
	}
	dec := json.NewDecoder(strings.NewReader(lines[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&x); err != nil {
		t.Fatalf("export line in docs/braid.md: %v", err)
	}
	got := events.Event{Position: x.Position, AggregateType: x.AggregateType, AggregateID: x.AggregateID,
		Version: x.Version, Type: x.EventType, Schema: x.Schema, Actor: x.Actor, OccurredAt: x.OccurredAt,
		CommandID: x.CommandID, Data: []byte(x.Data)}
	ph, err := hex.DecodeString(x.ParentHash)
	if err != nil || len(ph) != 32 {
		t.Fatalf("export parent_hash %q: want 64 hex digits", x.ParentHash)
	}
	copy(got.ParentHash[:], ph)
	if !bytes.Equal(got.Body(nil), docBody) {
		t.Fatalf("export line's body:\n got %x\nwant %x", got.Body(nil), docBody)
	}
	if x.Hash != docHash || x.Hash != strings.ToLower(x.Hash) {
		t.Fatalf("export hash: got %s, want %s in lowercase", x.Hash, docHash)
	}
}
