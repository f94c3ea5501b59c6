// Package notify tells people what happens on the tickets they watch: the
// watch list, the notifications and their read state are projections of the
// log (so replay rebuilds them row for row), and an optional job mails each
// person a digest of what they have not read.
//
// It depends on events only. Ticket events are read through the registry by
// their stored type names (the names are the contract, see STYLE.md), with
// payload structs of its own holding only the fields it needs; it never
// imports the tickets package.
package notify

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strconv"

	"braid/internal/events"
)

// Aggregate is the aggregate type of a person's inbox: their watches, what
// they have read and their digest address. Its id is the person's user id.
// Watching is not an event of the ticket, so it never moves the ticket's
// version under an edit form.
const Aggregate = "inbox"

// Payloads of notify's own events, stored under stable snake_case names.
type (
	Watched struct {
		TicketID int64 `json:"ticket_id"`
	}
	Unwatched struct {
		TicketID int64 `json:"ticket_id"`
	}
	// Read marks notifications read: every one at or below UpTo (a log
	// position; 0 for none) and the ones at Positions.
	Read struct {
		UpTo      int64   `json:"up_to,omitempty"`
		Positions []int64 `json:"positions,omitempty"`
	}
	// EmailSet sets (or, empty, clears) where the digest goes.
	EmailSet struct {
		Email string `json:"email"`
	}
)

// Types are notify's event types; see Register.
type Types struct {
	Watched   events.Type[Watched]
	Unwatched events.Type[Unwatched]
	Read      events.Type[Read]
	EmailSet  events.Type[EmailSet]
}

// The other features' events notify reads, by their stored names, each
// decoded into the few fields used here. Their schema is the current one
// of the registry: Decode upcasts older payloads first.
type (
	person struct {
		Username string `json:"username"`
	}
	renamed struct {
		To string `json:"to"`
	}
	// hookOff is webhook_disabled: whom to tell, and of which webhook.
	hookOff struct {
		Project string   `json:"project"`
		Webhook string   `json:"webhook"`
		Notify  []string `json:"notify"`
	}
	// ticketData holds what notify reads of any ticket event: each kind
	// fills the fields it has.
	ticketData struct {
		Body      string `json:"body"`
		CommentID int64  `json:"comment_id"`
		Assignee  string `json:"assignee"`
		// Mentioned is kept in an erased payload's remnant (internal/erase):
		// the ids this projection found mentioned when the body was there.
		Mentioned []string `json:"mentioned"`
	}
)

// Register defines notify's event types and its projection in reg. It must
// come after the packages that define user_registered and the ticket
// events (auth, tickets).
func Register(reg *events.Registry) Types {
	t := Types{
		Watched:   events.Define[Watched](reg, "ticket_watched", 1),
		Unwatched: events.Define[Unwatched](reg, "ticket_unwatched", 1),
		Read:      events.Define[Read](reg, "notifications_read", 1),
		EmailSet:  events.Define[EmailSet](reg, "email_set", 1),
	}
	// One projection: its tables are read only by each other, so replay
	// rebuilds them together in one scratch file.
	p := reg.NewProjection("notify", "watches", "notify_people", "notifications", "notify_emails")

	// People by id (the aggregate id: opaque, or the username for people
	// registered before person ids) with their current username, which
	// @mentions name.
	events.On(reg, p, events.Type[person]{Name: "user_registered", Schema: 1}, func(ctx context.Context, q events.Querier, e *events.Event, d person) error {
		username := d.Username
		if username == "" { // erased (internal/erase): the id stands in
			username = e.AggregateID
		}
		_, err := q.ExecContext(ctx, `INSERT OR IGNORE INTO notify_people (user_id, username) VALUES (?, ?)`, e.AggregateID, username)
		return err
	})
	events.On(reg, p, events.Type[renamed]{Name: "username_changed", Schema: 1}, func(ctx context.Context, q events.Querier, e *events.Event, d renamed) error {
		if d.To == "" { // erased (internal/erase)
			return nil
		}
		_, err := q.ExecContext(ctx, `UPDATE notify_people SET username = ? WHERE user_id = ?`, d.To, e.AggregateID)
		return err
	})
	// An erased person: their username and digest address go.
	events.On(reg, p, events.ErasedEvent, func(ctx context.Context, q events.Querier, e *events.Event, d events.Erasure) error {
		if d.Scope != "person" {
			return nil
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM notify_emails WHERE user_id = ?`, d.Target); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, `UPDATE notify_people SET username = user_id WHERE user_id = ?`, d.Target)
		return err
	})

	events.On(reg, p, t.Watched, func(ctx context.Context, q events.Querier, e *events.Event, d Watched) error {
		return watch(ctx, q, d.TicketID, e.AggregateID, true)
	})
	events.On(reg, p, t.Unwatched, func(ctx context.Context, q events.Querier, e *events.Event, d Unwatched) error {
		_, err := q.ExecContext(ctx, `UPDATE watches SET watching = 0 WHERE ticket_id = ? AND user_id = ?`, d.TicketID, e.AggregateID)
		return err
	})
	events.On(reg, p, t.Read, func(ctx context.Context, q events.Querier, e *events.Event, d Read) error {
		if d.UpTo > 0 {
			if _, err := q.ExecContext(ctx, `UPDATE notifications SET read = 1 WHERE user_id = ? AND read = 0 AND position <= ?`, e.AggregateID, d.UpTo); err != nil {
				return err
			}
		}
		for _, pos := range d.Positions {
			if _, err := q.ExecContext(ctx, `UPDATE notifications SET read = 1 WHERE user_id = ? AND position = ?`, e.AggregateID, pos); err != nil {
				return err
			}
		}
		return nil
	})
	events.On(reg, p, t.EmailSet, func(ctx context.Context, q events.Querier, e *events.Event, d EmailSet) error {
		if d.Email == "" {
			_, err := q.ExecContext(ctx, `DELETE FROM notify_emails WHERE user_id = ?`, e.AggregateID)
			return err
		}
		_, err := q.ExecContext(ctx, `INSERT INTO notify_emails (user_id, email) VALUES (?, ?)
			ON CONFLICT (user_id) DO UPDATE SET email = excluded.email`, e.AggregateID, d.Email)
		return err
	})

	// A webhook turned off for failing (internal/hooks) is told to the
	// people its event names: the project's owners then.
	events.On(reg, p, events.Type[hookOff]{Name: "webhook_disabled", Schema: 1}, func(ctx context.Context, q events.Querier, e *events.Event, d hookOff) error {
		for _, u := range d.Notify {
			if _, err := q.ExecContext(ctx, `INSERT OR IGNORE INTO notifications (user_id, position, ticket_id, actor, kind, subject, occurred_at) VALUES (?, ?, 0, ?, ?, ?, ?)`,
				u, e.Position, e.Actor, e.Type, d.Project+"/"+d.Webhook, e.OccurredAt); err != nil {
				return err
			}
		}
		return nil
	})

	// Ticket events: who starts watching, then who is told.
	onTicket := func(name string, fn func(ctx context.Context, q events.Querier, e *events.Event, d ticketData, n *note) error) {
		events.On(reg, p, events.Type[ticketData]{Name: name, Schema: 1}, func(ctx context.Context, q events.Querier, e *events.Event, d ticketData) error {
			id, err := strconv.ParseInt(e.AggregateID, 10, 64)
			if err != nil {
				return nil // not a numbered ticket: nothing to tell
			}
			n := &note{ticket: id, commentID: d.CommentID}
			if fn != nil {
				if err := fn(ctx, q, e, d, n); err != nil {
					return err
				}
			}
			return n.tell(ctx, q, e)
		})
	}
	// Opening and commenting make the actor a watcher; a mention in them
	// makes the one mentioned a watcher again even after an unwatch (they
	// were spoken to). A mention added by an edit adds only people who
	// never watched nor unwatched.
	acts := func(again bool) func(ctx context.Context, q events.Querier, e *events.Event, d ticketData, n *note) error {
		return func(ctx context.Context, q events.Querier, e *events.Event, d ticketData, n *note) error {
			var err error
			if again {
				if err := watch(ctx, q, n.ticket, e.Actor, true); err != nil {
					return err
				}
			}
			if e.ErasedBy != 0 { // the body is erased; its remnant says who was mentioned
				n.mentioned = d.Mentioned
			} else if n.mentioned, err = mentioned(ctx, q, d.Body); err != nil {
				return err
			}
			for _, u := range n.mentioned {
				if err := watch(ctx, q, n.ticket, u, again); err != nil {
					return err
				}
			}
			return nil
		}
	}
	onTicket("ticket_opened", acts(true))
	onTicket("comment_added", acts(true))
	onTicket("ticket_edited", acts(false))
	onTicket("comment_edited", acts(false))
	onTicket("ticket_assigned", func(ctx context.Context, q events.Querier, e *events.Event, d ticketData, n *note) error {
		n.subject = d.Assignee
		return watch(ctx, q, n.ticket, d.Assignee, true)
	})
	for _, k := range []string{"ticket_unassigned", "ticket_closed", "ticket_reopened", "comment_deleted"} {
		onTicket(k, nil)
	}
	return t
}

// note is one ticket event as it is told to watchers.
type note struct {
	ticket    int64
	commentID int64
	subject   string
	mentioned []string
}

// tell inserts a notification for every watcher of the ticket but the actor.
func (n *note) tell(ctx context.Context, q events.Querier, e *events.Event) error {
	// The mentioned are told they were mentioned; a query per event keeps
	// the projection one statement for everyone else.
	if _, err := q.ExecContext(ctx, `INSERT INTO notifications (user_id, position, ticket_id, actor, kind, comment_id, subject, mentioned, occurred_at)
		SELECT user_id, ?, ticket_id, ?, ?, ?, ?, 0, ? FROM watches
		WHERE ticket_id = ? AND watching = 1 AND user_id <> ? ORDER BY user_id`,
		e.Position, e.Actor, e.Type, n.commentID, n.subject, e.OccurredAt, n.ticket, e.Actor); err != nil {
		return err
	}
	for _, u := range n.mentioned {
		if u == e.Actor {
			continue
		}
		if _, err := q.ExecContext(ctx, `UPDATE notifications SET mentioned = 1 WHERE user_id = ? AND position = ?`, u, e.Position); err != nil {
			return err
		}
	}
	return nil
}

// watch makes user a watcher of ticket. again says whether to watch even
// after an unwatch by hand; otherwise only a person never seen is added.
func watch(ctx context.Context, q events.Querier, ticket int64, user string, again bool) error {
	if user == "" {
		return nil
	}
	if again {
		_, err := q.ExecContext(ctx, `INSERT INTO watches (ticket_id, user_id, watching) VALUES (?, ?, 1)
			ON CONFLICT (ticket_id, user_id) DO UPDATE SET watching = 1`, ticket, user)
		return err
	}
	_, err := q.ExecContext(ctx, `INSERT OR IGNORE INTO watches (ticket_id, user_id, watching) VALUES (?, ?, 1)`, ticket, user)
	return err
}

// mentionRE finds @username: a username as registration allows it, not
// inside a word or an email address (the @ follows a start, space or
// punctuation that is not part of a name).
var mentionRE = regexp.MustCompile(`(?:^|[^a-zA-Z0-9_.@-])@([a-z0-9_-]{3,32})\b`)

// Mentions returns the distinct @usernames in s, in order of appearance,
// registered or not.
func Mentions(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range mentionRE.FindAllStringSubmatch(s, -1) {
		if u := m[1]; !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

// mentioned returns the ids of the registered people @mentioned in s by
// their username at the time (at most 50, so a body full of names cannot
// fan out without end).
//
// This is the one username lookup that does not go through
// auth.IDByUsername: it runs inside notify's projection, which replay
// rebuilds from notify's own tables alone (and notify never imports auth),
// so it reads notify_people, the same mapping kept from the same events.
func mentioned(ctx context.Context, q events.Querier, s string) ([]string, error) {
	var out []string
	for _, u := range Mentions(s) {
		if len(out) == 50 {
			break
		}
		var id string
		err := q.QueryRowContext(ctx, `SELECT user_id FROM notify_people WHERE username = ?`, u).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}
