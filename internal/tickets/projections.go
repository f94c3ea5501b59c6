package tickets

import (
	"context"
	"strings"

	"braid/internal/events"
)

// Register defines the ticket event types and their projections in reg.
// Adding an event type is one visible edit here.
func Register(reg *events.Registry) Types {
	t := Types{
		Opened:         events.Define[Opened](reg, "ticket_opened", 1),
		Edited:         events.Define[Edited](reg, "ticket_edited", 1),
		Assigned:       events.Define[Assigned](reg, "ticket_assigned", 1),
		Unassigned:     events.Define[Unassigned](reg, "ticket_unassigned", 1),
		Closed:         events.Define[Closed](reg, "ticket_closed", 1),
		Reopened:       events.Define[Reopened](reg, "ticket_reopened", 1),
		CommentAdded:   events.Define[CommentAdded](reg, "comment_added", 1),
		CommentEdited:  events.Define[CommentEdited](reg, "comment_edited", 1),
		CommentDeleted: events.Define[CommentDeleted](reg, "comment_deleted", 1),
	}

	// tickets and their labels.
	p := reg.NewProjection("tickets", "tickets", "ticket_labels", "ticket_counts", "ticket_project_counts")
	events.On(reg, p, t.Opened, func(ctx context.Context, q events.Querier, e *events.Event, d Opened) error {
		if _, err := q.ExecContext(ctx, `INSERT INTO tickets (id, title, body, status, assignee, author, version, comment_count, opened_at, updated_at, project)
			VALUES (?, ?, ?, 'open', '', ?, ?, 0, ?, ?, ?)`, e.AggregateID, d.Title, d.Body, e.Actor, e.Version, e.OccurredAt, e.OccurredAt, projectOf(d)); err != nil {
			return err
		}
		if err := count(ctx, q, "open", 1); err != nil {
			return err
		}
		if err := countIn(ctx, q, e.AggregateID, "open", 1); err != nil {
			return err
		}
		return setLabels(ctx, q, e.AggregateID, d.Labels)
	})
	events.On(reg, p, t.Edited, func(ctx context.Context, q events.Querier, e *events.Event, d Edited) error {
		if _, err := q.ExecContext(ctx, `UPDATE tickets SET title = ?, body = ?, erased_at = '', erased_by_role = '', version = ?, updated_at = ? WHERE id = ?`,
			d.Title, d.Body, e.Version, e.OccurredAt, e.AggregateID); err != nil {
			return err
		}
		return setLabels(ctx, q, e.AggregateID, d.Labels)
	})
	touch := func(set string, args ...any) func(ctx context.Context, q events.Querier, e *events.Event) error {
		return func(ctx context.Context, q events.Querier, e *events.Event) error {
			if set != "" {
				set += ", "
			}
			a := append(append([]any{}, args...), e.Version, e.OccurredAt, e.AggregateID)
			_, err := q.ExecContext(ctx, `UPDATE tickets SET `+set+`version = ?, updated_at = ? WHERE id = ?`, a...)
			return err
		}
	}
	events.On(reg, p, t.Assigned, func(ctx context.Context, q events.Querier, e *events.Event, d Assigned) error {
		return touch("assignee = ?", d.Assignee)(ctx, q, e)
	})
	events.On(reg, p, t.Unassigned, func(ctx context.Context, q events.Querier, e *events.Event, d Unassigned) error {
		return touch("assignee = ''")(ctx, q, e)
	})
	events.On(reg, p, t.Closed, func(ctx context.Context, q events.Querier, e *events.Event, d Closed) error {
		if err := move(ctx, q, e.AggregateID, "open", "closed"); err != nil {
			return err
		}
		return touch("status = 'closed'")(ctx, q, e)
	})
	events.On(reg, p, t.Reopened, func(ctx context.Context, q events.Querier, e *events.Event, d Reopened) error {
		if err := move(ctx, q, e.AggregateID, "closed", "open"); err != nil {
			return err
		}
		return touch("status = 'open'")(ctx, q, e)
	})
	events.On(reg, p, t.CommentAdded, func(ctx context.Context, q events.Querier, e *events.Event, d CommentAdded) error {
		return touch("comment_count = comment_count + 1")(ctx, q, e)
	})
	events.On(reg, p, t.CommentEdited, func(ctx context.Context, q events.Querier, e *events.Event, d CommentEdited) error {
		return touch("")(ctx, q, e)
	})
	events.On(reg, p, t.CommentDeleted, func(ctx context.Context, q events.Querier, e *events.Event, d CommentDeleted) error {
		return touch("comment_count = comment_count - 1")(ctx, q, e)
	})

	// comments, in order, without the deleted ones.
	c := reg.NewProjection("comments", "comments")
	events.On(reg, c, t.CommentAdded, func(ctx context.Context, q events.Querier, e *events.Event, d CommentAdded) error {
		_, err := q.ExecContext(ctx, `INSERT INTO comments (ticket_id, id, author, body, created_at, position) VALUES (?, ?, ?, ?, ?, ?)`,
			e.AggregateID, d.CommentID, e.Actor, d.Body, e.OccurredAt, e.Position)
		return err
	})
	events.On(reg, c, t.CommentEdited, func(ctx context.Context, q events.Querier, e *events.Event, d CommentEdited) error {
		_, err := q.ExecContext(ctx, `UPDATE comments SET body = ?, edited_at = ?, erased_at = '', erased_by_role = '' WHERE ticket_id = ? AND id = ?`,
			d.Body, e.OccurredAt, e.AggregateID, d.CommentID)
		return err
	})
	events.On(reg, c, t.CommentDeleted, func(ctx context.Context, q events.Querier, e *events.Event, d CommentDeleted) error {
		_, err := q.ExecContext(ctx, `DELETE FROM comments WHERE ticket_id = ? AND id = ?`, e.AggregateID, d.CommentID)
		return err
	})

	// An erasure (internal/erase) blanks the text its payloads had put
	// here and says when and by whom; replay reaches the same rows from the
	// erased payloads' remnants (no title, no body) and this handler.
	erased := events.ErasedEvent
	events.On(reg, p, erased, func(ctx context.Context, q events.Querier, e *events.Event, d events.Erasure) error {
		for _, id := range d.Tickets {
			if _, err := q.ExecContext(ctx, `UPDATE tickets SET title = '', body = '', erased_at = ?, erased_by_role = ? WHERE id = ?`,
				e.OccurredAt, d.ByRole, id); err != nil {
				return err
			}
		}
		return nil
	})
	events.On(reg, c, erased, func(ctx context.Context, q events.Querier, e *events.Event, d events.Erasure) error {
		for _, x := range d.Positions {
			ticket, ok := strings.CutPrefix(x.Aggregate, Aggregate+"/")
			if !ok || (x.Type != "comment_added" && x.Type != "comment_edited") {
				continue
			}
			if _, err := q.ExecContext(ctx, `UPDATE comments SET body = '', erased_at = ?, erased_by_role = ? WHERE ticket_id = ? AND id = ?`,
				e.OccurredAt, d.ByRole, ticket, keptComment(x)); err != nil {
				return err
			}
		}
		return nil
	})

	// full-text search over title and body (FTS5, rowid = ticket id).
	s := reg.NewProjection("ticket_search", "tickets_fts")
	events.On(reg, s, t.Opened, func(ctx context.Context, q events.Querier, e *events.Event, d Opened) error {
		_, err := q.ExecContext(ctx, `INSERT INTO tickets_fts (rowid, title, body) VALUES (?, ?, ?)`, e.AggregateID, d.Title, d.Body)
		return err
	})
	events.On(reg, s, t.Edited, func(ctx context.Context, q events.Querier, e *events.Event, d Edited) error {
		if _, err := q.ExecContext(ctx, `DELETE FROM tickets_fts WHERE rowid = ?`, e.AggregateID); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, `INSERT INTO tickets_fts (rowid, title, body) VALUES (?, ?, ?)`, e.AggregateID, d.Title, d.Body)
		return err
	})

	events.On(reg, s, erased, func(ctx context.Context, q events.Querier, e *events.Event, d events.Erasure) error {
		for _, id := range d.Tickets {
			if _, err := q.ExecContext(ctx, `DELETE FROM tickets_fts WHERE rowid = ?`, id); err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx, `INSERT INTO tickets_fts (rowid, title, body) VALUES (?, '', '')`, id); err != nil {
				return err
			}
		}
		return nil
	})

	registerViews(reg, &t) // a person's saved views of the list
	registerAttachments(reg, &t, p)
	return t
}

// keptComment is the comment id an erased comment's remnant keeps.
func keptComment(x events.ErasedPosition) int64 {
	var k struct {
		CommentID int64 `json:"comment_id"`
	}
	x.KeptInto(&k)
	return k.CommentID
}

// Touches makes an event type of another package on the ticket aggregate
// (internal/fields: field values, relations) move the ticket's version and
// updated time in the tickets table, as the fold does.
func Touches[T any](reg *events.Registry, typ events.Type[T]) {
	events.On(reg, reg.Projection("tickets"), typ, func(ctx context.Context, q events.Querier, e *events.Event, _ T) error {
		_, err := q.ExecContext(ctx, `UPDATE tickets SET version = ?, updated_at = ? WHERE id = ?`, e.Version, e.OccurredAt, e.AggregateID)
		return err
	})
}

// count adds by to the number of tickets with status.
func count(ctx context.Context, q events.Querier, status string, by int) error {
	_, err := q.ExecContext(ctx, `INSERT INTO ticket_counts (status, n) VALUES (?, ?)
		ON CONFLICT (status) DO UPDATE SET n = n + excluded.n`, status, by)
	return err
}

// countIn adds by to the number of tickets with status in ticket id's project.
func countIn(ctx context.Context, q events.Querier, id, status string, by int) error {
	_, err := q.ExecContext(ctx, `INSERT INTO ticket_project_counts (project, status, n) SELECT project, ?, ? FROM tickets WHERE id = ?
		ON CONFLICT (project, status) DO UPDATE SET n = n + excluded.n`, status, by, id)
	return err
}

func move(ctx context.Context, q events.Querier, id, from, to string) error {
	if err := count(ctx, q, from, -1); err != nil {
		return err
	}
	if err := count(ctx, q, to, 1); err != nil {
		return err
	}
	if err := countIn(ctx, q, id, from, -1); err != nil {
		return err
	}
	return countIn(ctx, q, id, to, 1)
}

func setLabels(ctx context.Context, q events.Querier, id string, labels []string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM ticket_labels WHERE ticket_id = ?`, id); err != nil {
		return err
	}
	for _, l := range labels {
		if _, err := q.ExecContext(ctx, `INSERT INTO ticket_labels (ticket_id, label) VALUES (?, ?)`, id, l); err != nil {
			return err
		}
	}
	return nil
}
