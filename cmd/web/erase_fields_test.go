package main

import (
	"testing"

	"braid/internal/erase"
)

// Every event type Braid registers says which of its fields are personal
// (erase.Fields), so a new event type cannot leak by being forgotten; and
// the table names no type that does not exist.
func TestEveryTypeIsClassified(t *testing.T) {
	reg, _ := registry()
	known := map[string]bool{}
	for _, name := range reg.TypeNames() {
		known[name] = true
		if _, ok := erase.Fields[name]; !ok {
			t.Errorf("event type %q is not in erase.Fields: say which of its fields hold personal data (nil for none)", name)
		}
	}
	for name := range erase.Fields {
		if !known[name] {
			t.Errorf("erase.Fields classifies %q, which is not a registered event type", name)
		}
	}
}

func TestKeptDropsPersonalFields(t *testing.T) {
	got, err := erase.Kept("comment_added", []byte(`{"comment_id":3,"body":"my address is 1 Main St"}`))
	if err != nil || string(got) != `{"comment_id":3}` {
		t.Fatalf("Kept(comment_added) = %s, %v; want {\"comment_id\":3}", got, err)
	}
	got, err = erase.Kept("ticket_opened", []byte(`{"title":"t","body":"b","labels":["bug"],"project":"main"}`))
	if err != nil || string(got) != `{"labels":["bug"],"project":"main"}` {
		t.Fatalf("Kept(ticket_opened) = %s, %v", got, err)
	}
	if _, err := erase.Kept("no_such_type", []byte(`{}`)); err == nil {
		t.Fatal("Kept of an unclassified type: no error")
	}
}
