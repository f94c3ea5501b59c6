package tickets

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"braid/internal/access"
	"braid/internal/attach"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
	"braid/internal/markdown"
)

// Service runs ticket commands through the writer. It keeps a memory image
// of recently used tickets, checked against the log's last version and
// hash of the ticket before every use, so a command never folds a long
// history twice and never trusts a stale image.
type Service struct {
	Writer   *events.Writer
	Registry *events.Registry
	Types    Types

	mu    sync.Mutex
	cache map[string]Ticket
}

// NewService returns a service for the ticket commands.
func NewService(w *events.Writer, reg *events.Registry, t Types) *Service {
	return &Service{Writer: w, Registry: reg, Types: t, cache: map[string]Ticket{}}
}

const cacheSize = 50000

// load returns the current state of ticket id inside the writer's
// transaction.
func (s *Service) load(ctx context.Context, tx *events.Tx, id string) (Ticket, error) {
	v, h, err := tx.Last(ctx, Aggregate, id)
	if err != nil {
		return Ticket{}, err
	}
	if v == 0 {
		return Ticket{}, errs.E(errs.NotFound, "There is no ticket #%s.", id)
	}
	s.mu.Lock()
	cached, ok := s.cache[id]
	s.mu.Unlock()
	if ok && cached.Version == v && cached.lastHash == h {
		return cached, nil
	}
	base := Ticket{}
	if ok && cached.Version < v {
		// Reuse the image if it is a prefix of the log's history.
		prefix, err := tx.Load(ctx, Aggregate, id, cached.Version-1)
		if err == nil && len(prefix) > 0 && prefix[0].Hash == cached.lastHash {
			base = cached
			evs := prefix[1:]
			for i := range evs {
				base = s.Types.Apply(base, &evs[i], s.Registry)
			}
			s.remember(id, base)
			return base, nil
		}
	}
	evs, err := tx.Load(ctx, Aggregate, id, 0)
	if err != nil {
		return Ticket{}, err
	}
	t := s.Types.Fold(evs, s.Registry)
	s.remember(id, t)
	return t, nil
}

func (s *Service) remember(id string, t Ticket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= cacheSize {
		clear(s.cache)
	}
	s.cache[id] = t
}

// fingerprint names a ticket command by its kind, the ticket and every
// input, so that a command_id sent again is a repeat only of the same
// command (see events.Command.Fingerprint).
func fingerprint(kind string, id int64, parts ...string) string {
	return events.Fingerprint(kind, append([]string{strconv.FormatInt(id, 10)}, parts...)...)
}

// draftParts lists a draft's fields for a fingerprint: the labels last, as
// many as there are.
func draftParts(d Draft, more ...string) []string {
	return append(append(more, d.Title, d.Body), d.Labels...)
}

// on runs a command against ticket id: decide gets the current state. The
// actor must hold what action needs in the ticket's project (access.Table);
// action is given the ticket, as editing one's own ticket needs less than
// editing anyone's.
func (s *Service) on(ctx context.Context, actor, cmdID, fp string, id int64, action func(t Ticket) access.Action, decide func(t Ticket, tx *events.Tx) ([]events.Pending, error)) (events.Result, error) {
	cmd, after := s.command(actor, cmdID, fp, id, action, decide)
	res, err := s.Writer.Do(ctx, cmd)
	after(res, err)
	return res, err
}

// command builds what on runs, for the writer's Do or DoAll, and what to
// do with its outcome.
func (s *Service) command(actor, cmdID, fp string, id int64, action func(t Ticket) access.Action, decide func(t Ticket, tx *events.Tx) ([]events.Pending, error)) (events.Command, func(events.Result, error)) {
	sid := strconv.FormatInt(id, 10)
	var t Ticket
	cmd := events.Command{ID: cmdID, Actor: actor, Fingerprint: fp, Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
		var err error
		if t, err = s.load(ctx, tx, sid); err != nil {
			return nil, err
		}
		if err := access.Can(ctx, tx.Q(), actor, action(t), t.Project); err != nil {
			if errs.Code(err) == errs.NotFound {
				return nil, errs.E(errs.NotFound, "There is no ticket #%s.", sid)
			}
			return nil, err
		}
		evs, err := decide(t, tx)
		if err != nil || len(evs) == 0 {
			return nil, err
		}
		return []events.Change{{AggregateType: Aggregate, AggregateID: sid, Expect: t.Version, Events: evs}}, nil
	}}
	return cmd, func(res events.Result, err error) {
		if err == nil && !res.Repeated && len(res.Events) > 0 {
			// Remember the state after the command, folded here rather than on
			// the writer's goroutine, so the next command on this ticket finds
			// it without reading the log. load still checks it against the
			// log's last version and hash before any use.
			for i := range res.Events {
				t = s.Types.Apply(t, &res.Events[i], s.Registry)
			}
			s.remember(sid, t)
		}
	}
}

// Open opens a ticket and returns its number.
func (s *Service) Open(ctx context.Context, actor string, d Draft, cmdID string) (int64, error) {
	return s.open(ctx, actor, d, nil, cmdID)
}

// open opens a ticket with files attached to it (none: as before).
func (s *Service) open(ctx context.Context, actor string, d Draft, files []attach.File, cmdID string) (int64, error) {
	fp := events.Fingerprint("open", draftParts(d)...)
	project := d.Project
	if project == "" {
		project = access.Default
	}
	if project != access.Default { // the same fingerprint as before projects in the default one
		fp = events.Fingerprint("open_in", draftParts(d, project)...)
	}
	if len(files) > 0 {
		fp = events.Fingerprint("open_files", append(draftParts(d, project), fileParts(files)...)...)
	}
	res, err := s.Writer.Do(ctx, events.Command{ID: cmdID, Actor: actor, Fingerprint: fp, Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
		if err := access.Can(ctx, tx.Q(), actor, access.Open, project); err != nil {
			return nil, err
		}
		evs, err := s.Types.Open(d)
		if err != nil {
			return nil, err
		}
		more, err := s.Types.attachEvents(ctx, tx, files, 0)
		if err != nil {
			return nil, err
		}
		evs = append(evs, more...)
		var next int64
		if err := tx.Q().QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) + 1 FROM tickets`).Scan(&next); err != nil {
			return nil, fmt.Errorf("next ticket number: %w", err)
		}
		return []events.Change{{AggregateType: Aggregate, AggregateID: strconv.FormatInt(next, 10), Expect: 0, Events: evs}}, nil
	}})
	if err != nil {
		return 0, err
	}
	id, _ := strconv.ParseInt(res.Events[0].AggregateID, 10, 64)
	return id, nil
}

// Edit changes a ticket's title, body and labels if it is still at version.
func (s *Service) Edit(ctx context.Context, actor string, id int64, d Draft, version int64, cmdID string) error {
	return s.edit(ctx, actor, id, d, version, nil, cmdID)
}

// edit is Edit with files attached to the ticket in the same command.
func (s *Service) edit(ctx context.Context, actor string, id int64, d Draft, version int64, files []attach.File, cmdID string) error {
	fp := fingerprint("edit", id, draftParts(d, strconv.FormatInt(version, 10))...)
	if len(files) > 0 {
		fp = fingerprint("edit_files", id, append(draftParts(d, strconv.FormatInt(version, 10)), fileParts(files)...)...)
	}
	_, err := s.on(ctx, actor, cmdID, fp, id, editAction(actor), func(t Ticket, tx *events.Tx) ([]events.Pending, error) {
		evs, err := s.Types.Edit(t, d, version)
		if err != nil {
			return nil, err
		}
		more, err := s.Types.attachEvents(ctx, tx, files, 0)
		return append(evs, more...), err
	})
	return err
}

// Tick ticks (or unticks) task index of the ticket's description, as the
// page drew it (markdown.Tasks): a ticket_edited whose body differs from
// the stored one in exactly that box. Whoever may edit the ticket may; a
// description changed since the page was drawn (another version) is 409.
func (s *Service) Tick(ctx context.Context, actor string, id int64, index int, checked bool, version int64, cmdID string) error {
	fp := fingerprint("tick", id, strconv.Itoa(index), strconv.FormatBool(checked), strconv.FormatInt(version, 10))
	_, err := s.on(ctx, actor, cmdID, fp, id, editAction(actor), func(t Ticket, _ *events.Tx) ([]events.Pending, error) {
		if t.Version != version {
			return nil, errs.E(errs.Conflict, "Ticket #%d has changed since the page was drawn (version %d, now %d): look again and tick again.", t.ID, version, t.Version)
		}
		body, ok := markdown.Tick(t.Body, index, checked)
		if !ok {
			return nil, errs.Field("index", "Ticket #%d's description has no task %d.", t.ID, index+1)
		}
		return s.Types.Edit(t, Draft{Title: t.Title, Body: body, Labels: t.Labels}, version)
	})
	return err
}

// Assign assigns the ticket to a registered user; empty unassigns.
func (s *Service) Assign(ctx context.Context, actor string, id int64, assignee, cmdID string) error {
	if err := input.Line("assignee", "The assignee", assignee, MaxAssignee); err != nil {
		return err
	}
	_, err := s.on(ctx, actor, cmdID, fingerprint("assign", id, assignee), id, always(access.Assign), s.assign(ctx, assignee))
	return err
}

// assign decides an assignment: the assignee must exist and hold a role
// in the ticket's project.
func (s *Service) assign(ctx context.Context, assignee string) func(t Ticket, tx *events.Tx) ([]events.Pending, error) {
	return func(t Ticket, tx *events.Tx) ([]events.Pending, error) {
		if assignee != "" {
			var one int
			if err := tx.Q().QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE id = ?`, assignee).Scan(&one); err != nil {
				return nil, err
			}
			if one == 0 {
				return nil, errs.Field("assignee", "There is no user called %q.", assignee)
			}
			if r, err := access.RoleIn(ctx, tx.Q(), assignee, t.Project); err != nil {
				return nil, err
			} else if r < access.Viewer {
				return nil, errs.Field("assignee", "%s has no role in this ticket's project.", assignee)
			}
		}
		return s.Types.Assign(t, assignee)
	}
}

// Close closes the ticket.
func (s *Service) Close(ctx context.Context, actor string, id int64, cmdID string) error {
	_, err := s.on(ctx, actor, cmdID, fingerprint("close", id), id, always(access.Close), func(t Ticket, _ *events.Tx) ([]events.Pending, error) { return s.Types.Close(t) })
	return err
}

// Reopen reopens the ticket.
func (s *Service) Reopen(ctx context.Context, actor string, id int64, cmdID string) error {
	_, err := s.on(ctx, actor, cmdID, fingerprint("reopen", id), id, always(access.Reopen), func(t Ticket, _ *events.Tx) ([]events.Pending, error) { return s.Types.Reopen(t) })
	return err
}

// Comment adds a comment and returns its number within the ticket.
func (s *Service) Comment(ctx context.Context, actor string, id int64, body, cmdID string) (int64, error) {
	res, err := s.on(ctx, actor, cmdID, fingerprint("comment", id, body), id, always(access.Comment), func(t Ticket, _ *events.Tx) ([]events.Pending, error) { return s.Types.AddComment(t, body) })
	if err != nil || len(res.Events) == 0 {
		return 0, err
	}
	d, err := s.Types.CommentAdded.Decode(s.Registry, &res.Events[0])
	return d.CommentID, err
}

// EditComment changes a comment; only its author may.
func (s *Service) EditComment(ctx context.Context, actor string, id, cid int64, body, cmdID string) error {
	fp := fingerprint("edit_comment", id, strconv.FormatInt(cid, 10), body)
	_, err := s.on(ctx, actor, cmdID, fp, id, always(access.EditOwnComment), func(t Ticket, _ *events.Tx) ([]events.Pending, error) {
		return s.Types.EditComment(t, actor, cid, body)
	})
	return err
}

// DeleteComment deletes a comment; only its author may.
func (s *Service) DeleteComment(ctx context.Context, actor string, id, cid int64, cmdID string) error {
	_, err := s.on(ctx, actor, cmdID, fingerprint("delete_comment", id, strconv.FormatInt(cid, 10)), id, always(access.EditOwnComment), func(t Ticket, _ *events.Tx) ([]events.Pending, error) {
		return s.Types.DeleteComment(t, actor, cid)
	})
	return err
}

func always(a access.Action) func(Ticket) access.Action {
	return func(Ticket) access.Action { return a }
}

// editAction is what editing needs: less for the ticket's author.
func editAction(actor string) func(Ticket) access.Action {
	return func(t Ticket) access.Action {
		if t.Author == actor {
			return access.EditOwnTicket
		}
		return access.Edit
	}
}
