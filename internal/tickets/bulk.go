package tickets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"unicode/utf8"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
)

// BulkMax is the most tickets one bulk request may change.
const BulkMax = 100

// BulkActions are what a bulk request may do to each ticket.
var BulkActions = []string{"close", "reopen", "label", "unlabel", "assign", "unassign"}

// Bulk is one bulk request: Action on each of Tickets. Label is the label
// to add or remove; Assignee the person id to assign.
type Bulk struct {
	Tickets  []int64
	Action   string
	Label    string
	Assignee string
}

// BulkOutcome is what became of one ticket of a bulk request: done, or
// refused with the reason (and nothing appended for it).
type BulkOutcome struct {
	Ticket   int64  `json:"ticket"`
	Done     bool   `json:"done"`
	Repeated bool   `json:"repeated,omitempty"`
	Code     string `json:"code,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// BulkCommandID derives the command id of one ticket's command from the
// request's command id, so the same request sent again repeats each
// ticket's command instead of running it twice.
func BulkCommandID(cmdID string, ticket int64) string {
	sum := sha256.Sum256([]byte("bulk\x00" + cmdID + "\x00" + strconv.FormatInt(ticket, 10)))
	return hex.EncodeToString(sum[:16])
}

// Validate checks a bulk request before anything runs.
func (b *Bulk) Validate() error {
	if !slices.Contains(BulkActions, b.Action) {
		return errs.Field("action", "Choose what to do: close, reopen, label, unlabel, assign or unassign.")
	}
	if len(b.Tickets) == 0 {
		return errs.Field("tickets", "Choose at least one ticket.")
	}
	if len(b.Tickets) > BulkMax {
		return errs.Field("tickets", "Change at most %d tickets at once; %d were chosen.", BulkMax, len(b.Tickets))
	}
	switch b.Action {
	case "label", "unlabel":
		ls := ParseLabels(b.Label)
		if len(ls) != 1 {
			return errs.Field("label", "Name one label.")
		}
		if err := input.Line("label", "The label", ls[0], 0); err != nil {
			return err
		}
		if utf8.RuneCountInString(ls[0]) > MaxLabelSize {
			return errs.Field("label", "A label is 1 to %d characters.", MaxLabelSize)
		}
		b.Label = ls[0]
	case "assign":
		if b.Assignee == "" {
			return errs.Field("assignee", "Name the person to assign.")
		}
	}
	return nil
}

// Bulk runs b's action on each ticket as its own command (its own command
// id, derived from cmdID, and its own permission check), all in one batch
// of the writer: one transaction, one commit. A ticket refused appends
// nothing; the others go on.
func (s *Service) Bulk(ctx context.Context, actor string, b Bulk, cmdID string) ([]BulkOutcome, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	if cmdID == "" {
		cmdID = events.NewID()
	}
	if !events.ValidID(cmdID) {
		return nil, errs.Field("command_id", "command_id is 32 lowercase hex digits.")
	}
	var ids []int64
	for _, id := range b.Tickets {
		if id > 0 && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	cmds := make([]events.Command, len(ids))
	afters := make([]func(events.Result, error), len(ids))
	for i, id := range ids {
		action, fp, decide := s.bulkDecision(ctx, actor, id, b)
		cmds[i], afters[i] = s.command(actor, BulkCommandID(cmdID, id), fp, id, action, decide)
		cmds[i].Kind = "bulk_" + b.Action
	}
	res, errl := s.Writer.DoAll(ctx, cmds)
	out := make([]BulkOutcome, len(ids))
	for i, id := range ids {
		afters[i](res[i], errl[i])
		out[i] = BulkOutcome{Ticket: id, Done: errl[i] == nil, Repeated: res[i].Repeated}
		if errl[i] != nil {
			if errs.Code(errl[i]) == errs.Internal || errs.Code(errl[i]) == errs.Unavailable {
				return nil, errl[i] // the store failed: not one ticket's refusal
			}
			out[i].Code, out[i].Reason = errs.Code(errl[i]), errs.Message(errl[i])
		}
	}
	return out, nil
}

// bulkDecision is what one ticket's command of a bulk request needs, is
// named by and decides: the same checks as the single command.
func (s *Service) bulkDecision(ctx context.Context, actor string, id int64, b Bulk) (func(Ticket) access.Action, string, func(Ticket, *events.Tx) ([]events.Pending, error)) {
	switch b.Action {
	case "close":
		return always(access.Close), fingerprint("close", id), func(t Ticket, _ *events.Tx) ([]events.Pending, error) { return s.Types.Close(t) }
	case "reopen":
		return always(access.Reopen), fingerprint("reopen", id), func(t Ticket, _ *events.Tx) ([]events.Pending, error) { return s.Types.Reopen(t) }
	case "assign":
		return always(access.Assign), fingerprint("assign", id, b.Assignee), s.assign(ctx, b.Assignee)
	case "unassign":
		return always(access.Assign), fingerprint("assign", id, ""), s.assign(ctx, "")
	case "label":
		return editAction(actor), fingerprint("add_label", id, b.Label), func(t Ticket, _ *events.Tx) ([]events.Pending, error) {
			if slices.Contains(t.Labels, b.Label) {
				return nil, errs.E(errs.Conflict, "Ticket #%d already has the label %q.", t.ID, b.Label)
			}
			return s.Types.Edit(t, Draft{Title: t.Title, Body: t.Body, Labels: append(slices.Clone(t.Labels), b.Label)}, t.Version)
		}
	default: // unlabel
		return editAction(actor), fingerprint("remove_label", id, b.Label), func(t Ticket, _ *events.Tx) ([]events.Pending, error) {
			if !slices.Contains(t.Labels, b.Label) {
				return nil, errs.E(errs.Conflict, "Ticket #%d has no label %q.", t.ID, b.Label)
			}
			return s.Types.Edit(t, Draft{Title: t.Title, Body: t.Body, Labels: slices.DeleteFunc(slices.Clone(t.Labels), func(l string) bool { return l == b.Label })}, t.Version)
		}
	}
}
