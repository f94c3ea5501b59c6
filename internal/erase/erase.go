// Package erase removes personal data from braid v2 events without
// breaking the braid: it deletes the payloads (the log keeps their salted
// commitments, so every hash, checkpoint and proof still verifies), appends
// an `erased` event saying what was erased, by whom and why, and blanks the
// projection rows that showed the erased text. See docs/privacy.md.
package erase

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
)

// Aggregate is the aggregate type of erasures: one aggregate per erasure,
// its id the command id.
const Aggregate = "erasure"

// Scopes of an erasure.
const (
	Comment = "comment" // one comment: every comment_added/edited payload of it
	Ticket  = "ticket"  // one ticket's title and description (and, asked, its comments)
	Person  = "person"  // everything a person wrote, and their names and email address
)

// Roles an erasure is made in.
const (
	ByAdmin  = "admin"
	ByAuthor = "author"
)

// MaxReason is the longest reason, in characters.
const MaxReason = 200

// Erased is the payload of the erased event (events.Erasure: every
// projection that shows erasable text reads it).
type Erased = events.Erasure

// Position is one erased payload (events.ErasedPosition).
type Position = events.ErasedPosition

// Types are erase's event types.
type Types struct {
	Erased events.Type[Erased]
}

// Register defines the `erased` event type. It must run before the
// packages whose projections show erasures (tickets, auth, notify) register
// theirs, as they handle it.
func Register(reg *events.Registry) Types {
	return Types{Erased: events.Define[Erased](reg, "erased", 1)}
}

// Request is one erasure asked for.
type Request struct {
	Scope        string
	Target       string // ticket number; TICKET/COMMENT (e.g. 12/3); username or person id
	WithComments bool   // scope ticket: erase its comments too
	Reason       string
}

// ErrV1 refuses events written before braid v2: their payloads are part of
// the hashed log and cannot be removed without breaking it.
var ErrV1 = errs.E(errs.Invalid, "Some of this was written before braid v2 and cannot be erased; only a log moved to v2 by `web migrate-v2` can be.")

var commentTarget = regexp.MustCompile(`^([1-9][0-9]{0,17})[/#]([1-9][0-9]{0,17})$`)

// Validate checks the request's fields, naming each at fault.
func (r *Request) Validate() error {
	fields := map[string]string{}
	r.Target = strings.TrimSpace(r.Target)
	switch r.Scope {
	case Comment:
		if !commentTarget.MatchString(r.Target) {
			fields["target"] = "Name the comment as TICKET/COMMENT, e.g. 12/3."
		}
	case Ticket:
		if n, err := strconv.ParseInt(r.Target, 10, 64); err != nil || n < 1 {
			fields["target"] = "Name the ticket by its number."
		}
	case Person:
		if r.Target == "" || len(r.Target) > 64 || input.Problem(r.Target, false) != "" {
			fields["target"] = "Name the person by their username or id."
		}
	default:
		fields["scope"] = "Choose comment, ticket or person."
	}
	if r.Scope != Ticket && r.WithComments {
		fields["with_comments"] = "Only a ticket's erasure can take its comments."
	}
	if strings.TrimSpace(r.Reason) == "" {
		fields["reason"] = "Say why (no personal data: it stays in the log)."
	} else if err := input.Line("reason", "The reason", r.Reason, MaxReason); err != nil {
		for k, v := range errs.Fields(err) {
			fields[k] = v
		}
	}
	if len(fields) > 0 {
		return &errs.Error{Code: errs.Invalid, Message: "The erasure has mistakes; nothing was erased.", Fields: fields}
	}
	return nil
}

// Plan is what an erasure would erase, worked out from the log.
type Plan struct {
	Erased
	Author  string // the comment's author (scope comment)
	Project string // the ticket's project (scopes comment and ticket)
	Person  string // the person's id (scope person)
	Already int    // payloads in scope that were erased before
}

// Describe says in plain words what the plan erases.
func (p Plan) Describe() string {
	var kinds = map[string]int{}
	for _, x := range p.Positions {
		kinds[x.Type]++
	}
	var parts []string
	for _, k := range slices.Sorted(mapsKeys(kinds)) {
		parts = append(parts, fmt.Sprintf("%d %s", kinds[k], k))
	}
	return fmt.Sprintf("%d payloads (%s)", len(p.Positions), strings.Join(parts, ", "))
}

func mapsKeys(m map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Preview works out what r would erase, as the log stands in q, without
// checking who asks.
func Preview(ctx context.Context, q events.Querier, r Request) (Plan, error) {
	if err := r.Validate(); err != nil {
		return Plan{}, err
	}
	p := Plan{Erased: Erased{Scope: r.Scope, Target: r.Target, WithComments: r.WithComments, Reason: r.Reason}}
	var evs []events.Event
	var err error
	switch r.Scope {
	case Comment:
		m := commentTarget.FindStringSubmatch(r.Target)
		ticket, cid := m[1], m[2]
		p.Target = ticket + "/" + cid
		all, err := events.Select(ctx, q, `WHERE e.aggregate_type = 'ticket' AND e.aggregate_id = ? AND e.event_type IN ('comment_added', 'comment_edited', 'attachment_added') ORDER BY e.position`, ticket)
		if err != nil {
			return p, err
		}
		for _, e := range all {
			var d struct {
				CommentID int64 `json:"comment_id"`
				Comment   int64 `json:"comment"` // an attachment's comment
			}
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return p, fmt.Errorf("erase: comment at %d: %w", e.Position, err)
			}
			if e.Type == "attachment_added" {
				d.CommentID = d.Comment // the files attached to the comment go with it
			}
			if strconv.FormatInt(d.CommentID, 10) != cid {
				continue
			}
			if e.Type == "comment_added" {
				p.Author = e.Actor
			}
			evs = append(evs, e)
		}
		if len(evs) == 0 {
			return p, errs.Field("target", "There is no comment %s.", p.Target)
		}
		id, _ := strconv.ParseInt(ticket, 10, 64)
		if p.Project, err = access.TicketProject(ctx, q, id); err != nil {
			return p, err
		}
	case Ticket:
		types := `'ticket_opened', 'ticket_edited', 'attachment_added'`
		if r.WithComments {
			types += `, 'comment_added', 'comment_edited'`
		}
		all, err := events.Select(ctx, q, `WHERE e.aggregate_type = 'ticket' AND e.aggregate_id = ? AND e.event_type IN (`+types+`) ORDER BY e.position`, r.Target)
		if err != nil {
			return p, err
		}
		for _, e := range all {
			// The ticket's own files go with its text; a comment's with
			// the comments.
			if e.Type == "attachment_added" && !r.WithComments {
				var d struct {
					Comment int64 `json:"comment"`
				}
				if json.Unmarshal(e.Data, &d) == nil && d.Comment != 0 {
					continue
				}
			}
			evs = append(evs, e)
		}
		if len(evs) == 0 {
			return p, errs.Field("target", "There is no ticket %s.", r.Target)
		}
		id, _ := strconv.ParseInt(r.Target, 10, 64)
		if p.Project, err = access.TicketProject(ctx, q, id); err != nil {
			return p, err
		}
	case Person:
		if p.Person, err = personID(ctx, q, r.Target); err != nil {
			return p, err
		}
		p.Target = p.Person
		var names []string
		for t, f := range Fields {
			if len(f) > 0 {
				names = append(names, "'"+t+"'")
			}
		}
		slices.Sort(names)
		if evs, err = events.Select(ctx, q, `WHERE (e.actor = ? OR (e.aggregate_type = 'user' AND e.aggregate_id = ?)) AND e.event_type IN (`+strings.Join(names, ", ")+`) ORDER BY e.position`, p.Person, p.Person); err != nil {
			return p, err
		}
	}
	touched := map[string]bool{}
	for _, e := range evs {
		if !Personal(e.Type) {
			continue
		}
		if e.ErasedBy != 0 {
			p.Already++
			continue
		}
		if e.Format < 2 {
			return p, ErrV1
		}
		kept, err := Kept(e.Type, e.Data)
		if err != nil {
			return p, err
		}
		if kept, err = keepMentions(ctx, q, e, kept); err != nil {
			return p, err
		}
		p.Positions = append(p.Positions, Position{Position: e.Position, Type: e.Type, Aggregate: e.AggregateType + "/" + e.AggregateID, Kept: kept})
		if e.Type == "ticket_opened" || e.Type == "ticket_edited" {
			touched[e.AggregateID] = true
		}
	}
	if len(p.Positions) == 0 {
		if p.Already > 0 {
			return p, errs.E(errs.Invalid, "All of this was erased before; nothing is left to erase.")
		}
		return p, errs.E(errs.Invalid, "There is nothing to erase there.")
	}
	// A ticket shows the erasure when the payload its title and
	// description now come from is erased (or will be).
	erased := map[int64]bool{}
	for _, x := range p.Positions {
		erased[x.Position] = true
	}
	for _, id := range slices.Sorted(boolKeys(touched)) {
		var last, by int64
		if err := q.QueryRowContext(ctx, `SELECT e.position, COALESCE((SELECT erased_by FROM payloads WHERE position = e.position), 0) FROM events e
			WHERE e.aggregate_type = 'ticket' AND e.aggregate_id = ? AND e.event_type IN ('ticket_opened', 'ticket_edited') ORDER BY e.position DESC LIMIT 1`, id).Scan(&last, &by); err != nil {
			return p, fmt.Errorf("erase: last text of ticket %s: %w", id, err)
		}
		if erased[last] || by != 0 {
			n, _ := strconv.ParseInt(id, 10, 64)
			p.Tickets = append(p.Tickets, n)
		}
	}
	slices.Sort(p.Tickets)
	return p, nil
}

func boolKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// personID resolves a username or person id to the person's id.
func personID(ctx context.Context, q events.Querier, s string) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM users WHERE id = ? OR username = ? COLLATE NOCASE ORDER BY id = ? DESC LIMIT 1`, s, s, s).Scan(&id)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return "", errs.Field("target", "There is nobody called %q.", s)
		}
		return "", fmt.Errorf("erase: look up %q: %w", s, err)
	}
	return id, nil
}

// Who decides the role actor erases p in, or refuses: site admins (and the
// operator, actor system) erase anything; the author of a comment may erase
// it while they may still edit their own comments in its project.
func Who(ctx context.Context, q events.Querier, actor string, p Plan) (string, error) {
	if p.Scope == Comment && actor == p.Author && actor != access.System {
		if err := access.Can(ctx, q, actor, access.EraseOwnComment, p.Project); err != nil {
			return "", err
		}
		return ByAuthor, nil
	}
	if err := access.Can(ctx, q, actor, access.Erase, ""); err != nil {
		if errs.Code(err) == errs.Forbidden {
			return "", errs.E(errs.Forbidden, "Only a site admin may erase this (an author may erase their own comment).")
		}
		return "", err
	}
	return ByAdmin, nil
}

// keepMentions adds to the remnant of a ticket's or comment's text the
// people notify found @mentioned in it (ids, from the notifications it
// made), so a replay without the text tells the same people.
func keepMentions(ctx context.Context, q events.Querier, e events.Event, kept []byte) ([]byte, error) {
	switch e.Type {
	case "ticket_opened", "ticket_edited", "comment_added", "comment_edited":
	default:
		return kept, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT user_id FROM notifications WHERE position = ? AND mentioned = 1 ORDER BY user_id`, e.Position)
	if err != nil {
		return nil, fmt.Errorf("erase: mentions at %d: %w", e.Position, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil || len(ids) == 0 {
		return kept, err
	}
	var m map[string]any
	if err := json.Unmarshal(kept, &m); err != nil {
		return nil, err
	}
	m["mentioned"] = ids
	return json.Marshal(m)
}
