package tickets_test

import (
	"strings"
	"testing"

	"braid/internal/erase"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/tickets"
)

// history folds decided events the way the writer would number them, with
// no database: the domain is pure.
type history struct {
	tb    testing.TB
	reg   *events.Registry
	types tickets.Types
	evs   []events.Event
	actor string
}

func newHistory(tb testing.TB) *history {
	reg := events.NewRegistry()
	erase.Register(reg)
	return &history{tb: tb, reg: reg, types: tickets.Register(reg)}
}

// state is the fold of everything appended so far.
func (h *history) state() tickets.Ticket { return h.types.Fold(h.evs, h.reg) }

// as sets who issues the next command.
func (h *history) as(actor string) *history { h.actor = actor; return h }

// append records what a command decided, by the actor set with as; a
// command that must succeed fails the test when it does not.
func (h *history) append(ps []events.Pending, err error) {
	h.tb.Helper()
	if err != nil {
		h.tb.Fatalf("command refused: got %v, want success", err)
	}
	for _, p := range ps {
		n := int64(len(h.evs) + 1)
		h.evs = append(h.evs, events.Event{Position: n, AggregateType: tickets.Aggregate, AggregateID: "7", Version: n,
			Type: p.Type, Schema: p.Schema, Actor: h.actor, OccurredAt: "2026-11-22T10:00:00.000000000Z", Data: p.Data})
	}
}

// refused checks that a command failed with code and decided nothing.
func refused(tb testing.TB, what string, ps []events.Pending, err error, code string) {
	tb.Helper()
	if got := errs.Code(err); got != code {
		tb.Errorf("%s: got error %v (code %q), want code %q", what, err, got, code)
	}
	if len(ps) != 0 {
		tb.Errorf("%s: got %d events with the error, want none", what, len(ps))
	}
}

func TestTicketLifecycle(t *testing.T) {
	h := newHistory(t)
	ty := h.types
	h.as("ada").append(ty.Open(tickets.Draft{Title: "  login fails  ", Body: "steps", Labels: []string{"bug"}}))
	s := h.state()
	if s.ID != 7 || s.Title != "login fails" || s.Status != "open" || s.Author != "ada" || s.Version != 1 {
		t.Fatalf("after open: got %+v, want #7 \"login fails\" open by ada at version 1", s)
	}

	// Edit at the version the form showed; a stale version is a conflict.
	stale := s.Version
	h.as("bob").append(ty.Edit(s, tickets.Draft{Title: "login fails on Safari", Body: "steps", Labels: []string{"bug"}}, s.Version))
	evs, err := ty.Edit(h.state(), tickets.Draft{Title: "ada's title"}, stale)
	refused(t, "edit at a stale version", evs, err, errs.Conflict)
	if evs, err := ty.Edit(h.state(), tickets.Draft{Title: "login fails on Safari", Body: "steps", Labels: []string{"bug"}}, h.state().Version); err != nil || len(evs) != 0 {
		t.Fatalf("edit changing nothing: got %d events, %v; want none and no error", len(evs), err)
	}
	if s = h.state(); s.Title != "login fails on Safari" || s.Version != 2 {
		t.Fatalf("after edit: got %q at version %d, want the new title at version 2", s.Title, s.Version)
	}

	// Assign to oneself, twice: the second is refused.
	h.as("ada").append(ty.Assign(h.state(), "ada"))
	evs, err = ty.Assign(h.state(), "ada")
	refused(t, "assign to the same person twice", evs, err, errs.Invalid)
	h.as("ada").append(ty.Assign(h.state(), ""))
	evs, err = ty.Assign(h.state(), "")
	refused(t, "unassign when nobody is assigned", evs, err, errs.Invalid)
	if s = h.state(); s.Assignee != "" {
		t.Fatalf("after unassign: got assignee %q, want none", s.Assignee)
	}

	// Close twice is refused; so is reopening an open ticket.
	evs, err = ty.Reopen(h.state())
	refused(t, "reopen an open ticket", evs, err, errs.Conflict)
	h.as("bob").append(ty.Close(h.state()))
	evs, err = ty.Close(h.state())
	refused(t, "close a closed ticket", evs, err, errs.Conflict)
	if s = h.state(); s.Status != "closed" {
		t.Fatalf("after close: got status %q, want closed", s.Status)
	}
	h.as("bob").append(ty.Reopen(h.state()))
	if s = h.state(); s.Status != "open" {
		t.Fatalf("after reopen: got status %q, want open", s.Status)
	}
}

func TestCommentsAreTheirAuthorsOnly(t *testing.T) {
	h := newHistory(t)
	ty := h.types
	h.as("ada").append(ty.Open(tickets.Draft{Title: "t"}))
	h.as("bob").append(ty.AddComment(h.state(), "first <script>"))
	h.as("ada").append(ty.AddComment(h.state(), "second"))
	s := h.state()
	if len(s.Comments) != 2 || s.Comments[0].ID != 1 || s.Comments[1].ID != 2 || s.Comments[0].Author != "bob" {
		t.Fatalf("comments: got %+v, want 1 by bob and 2 by ada", s.Comments)
	}

	evs, err := ty.EditComment(s, "ada", 1, "hijack")
	refused(t, "edit someone else's comment", evs, err, errs.Forbidden)
	evs, err = ty.DeleteComment(s, "ada", 1)
	refused(t, "delete someone else's comment", evs, err, errs.Forbidden)
	evs, err = ty.EditComment(s, "bob", 9, "x")
	refused(t, "edit a comment that does not exist", evs, err, errs.NotFound)

	h.as("bob").append(ty.EditComment(s, "bob", 1, "first, edited"))
	if c, _ := h.state().Comment(1); c.Body != "first, edited" || c.EditedAt == "" {
		t.Fatalf("after edit: got %+v, want the new body and an edit time", c)
	}
	h.as("bob").append(ty.DeleteComment(h.state(), "bob", 1))
	if _, ok := h.state().Comment(1); ok {
		t.Fatalf("deleted comment 1 is still visible")
	}
	evs, err = ty.EditComment(h.state(), "bob", 1, "back from the dead")
	refused(t, "edit a deleted comment", evs, err, errs.NotFound)
	evs, err = ty.DeleteComment(h.state(), "bob", 1)
	refused(t, "delete a deleted comment", evs, err, errs.NotFound)

	// Numbers are never reused, even after a delete of the last one.
	h.as("ada").append(ty.DeleteComment(h.state(), "ada", 2))
	h.as("ada").append(ty.AddComment(h.state(), "third"))
	if cs := h.state().Comments; cs[len(cs)-1].ID != 3 {
		t.Fatalf("new comment after deletes: got number %d, want 3", cs[len(cs)-1].ID)
	}
}

func TestLimits(t *testing.T) {
	ty := newHistory(t).types
	open := tickets.Ticket{ID: 1, Title: "t", Status: "open", Version: 1, Labels: []string{}}
	labels := func(n, size int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = strings.Repeat(string(rune('a'+i)), size)
		}
		return out
	}
	// Limits count characters (runes), not bytes: é and ß are two bytes.
	cases := []struct {
		name     string
		decide   func() ([]events.Pending, error)
		wantCode string // "" for success
		field    string // the field the error names
	}{
		{"title at 200", func() ([]events.Pending, error) { return ty.Open(tickets.Draft{Title: strings.Repeat("é", 200)}) }, "", ""},
		{"title over 200", func() ([]events.Pending, error) { return ty.Open(tickets.Draft{Title: strings.Repeat("é", 201)}) }, errs.Invalid, "title"},
		{"title empty", func() ([]events.Pending, error) { return ty.Open(tickets.Draft{Title: " \t "}) }, errs.Invalid, "title"},
		{"title on two lines", func() ([]events.Pending, error) { return ty.Open(tickets.Draft{Title: "a\nb"}) }, errs.Invalid, "title"},
		{"body at 20000", func() ([]events.Pending, error) {
			return ty.Open(tickets.Draft{Title: "t", Body: strings.Repeat("ß", 20000)})
		}, "", ""},
		{"body over 20000", func() ([]events.Pending, error) {
			return ty.Open(tickets.Draft{Title: "t", Body: strings.Repeat("ß", 20001)})
		}, errs.Invalid, "body"},
		{"edit body over 20000", func() ([]events.Pending, error) {
			return ty.Edit(open, tickets.Draft{Title: "t", Body: strings.Repeat("ß", 20001)}, 1)
		}, errs.Invalid, "body"},
		{"10 labels of 30", func() ([]events.Pending, error) { return ty.Open(tickets.Draft{Title: "t", Labels: labels(10, 30)}) }, "", ""},
		{"11 labels", func() ([]events.Pending, error) { return ty.Open(tickets.Draft{Title: "t", Labels: labels(11, 3)}) }, errs.Invalid, "labels"},
		{"label of 31", func() ([]events.Pending, error) { return ty.Open(tickets.Draft{Title: "t", Labels: labels(1, 31)}) }, errs.Invalid, "labels"},
		{"label of 30 runes in 60 bytes", func() ([]events.Pending, error) {
			return ty.Open(tickets.Draft{Title: "t", Labels: []string{strings.Repeat("ü", 30)}})
		}, "", ""},
		{"comment at 10000", func() ([]events.Pending, error) { return ty.AddComment(open, strings.Repeat("ñ", 10000)) }, "", ""},
		{"comment over 10000", func() ([]events.Pending, error) { return ty.AddComment(open, strings.Repeat("ñ", 10001)) }, errs.Invalid, "body"},
		{"comment blank", func() ([]events.Pending, error) { return ty.AddComment(open, " \n ") }, errs.Invalid, "body"},
		{"comment edit over 10000", func() ([]events.Pending, error) {
			s := open
			s.Comments = []tickets.Comment{{ID: 1, Author: "ada", Body: "x"}}
			return ty.EditComment(s, "ada", 1, strings.Repeat("ñ", 10001))
		}, errs.Invalid, "body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := tc.decide()
			if tc.wantCode == "" {
				if err != nil || len(evs) != 1 {
					t.Fatalf("got %d events and %v, want 1 event and no error", len(evs), err)
				}
				return
			}
			refused(t, tc.name, evs, err, tc.wantCode)
			if _, ok := errs.Fields(err)[tc.field]; !ok {
				t.Fatalf("got field errors %v, want one for %q", errs.Fields(err), tc.field)
			}
		})
	}
}

func TestParseLabels(t *testing.T) {
	got := tickets.ParseLabels(" Bug, ui,,bug ,UX ")
	want := []string{"bug", "ui", "ux"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
}
