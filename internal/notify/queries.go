package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"braid/internal/access"
	"braid/internal/events"
)

// Item is one notification as the inbox shows it.
type Item struct {
	Position  int64  `json:"position"` // of the event told; the notification's id within a person's inbox
	TicketID  int64  `json:"ticket_id"`
	Title     string `json:"title"` // the ticket's title now
	Actor     string `json:"actor"`
	Kind      string `json:"kind"` // the event's type
	CommentID int64  `json:"comment_id,omitempty"`
	Subject   string `json:"subject,omitempty"` // the assignee, for assignments
	// The current usernames of actor and subject (both person ids).
	ActorUsername   string `json:"actor_username,omitempty"`
	SubjectUsername string `json:"subject_username,omitempty"`
	Mentioned       bool   `json:"mentioned"`
	OccurredAt      string `json:"occurred_at"`
	Read            bool   `json:"read"`
	Text            string `json:"text"` // in plain words
	Link            string `json:"link"`
}

// words says what happened, for the person told (me): "Bob commented on",
// with people named by name (their username when nil or unknown). The
// ticket's number and title follow it.
func (it Item) words(me string, name func(string) string) string {
	if name == nil {
		name = func(u string) string { return u }
	}
	a := name(it.Actor)
	switch it.Kind {
	case "ticket_opened":
		if it.Mentioned {
			return a + " mentioned you in a new ticket,"
		}
		return a + " opened"
	case "ticket_edited":
		if it.Mentioned {
			return a + " mentioned you in an edit of"
		}
		return a + " edited"
	case "ticket_assigned":
		to := it.Subject
		switch to {
		case me:
			to = "you"
		case it.Actor:
			to = "themselves"
		default:
			to = name(to)
		}
		return a + " assigned " + to + " to"
	case "ticket_unassigned":
		return a + " unassigned"
	case "ticket_closed":
		return a + " closed"
	case "ticket_reopened":
		return a + " reopened"
	case "comment_added":
		if it.Mentioned {
			return a + " mentioned you in a comment on"
		}
		return a + " commented on"
	case "comment_edited":
		if it.Mentioned {
			return a + " mentioned you in an edited comment on"
		}
		return a + " edited a comment on"
	case "comment_deleted":
		return a + " deleted a comment on"
	}
	return a + " changed"
}

func (it *Item) fill(me string) {
	name := func(id string) string {
		switch {
		case id == it.Actor && it.ActorUsername != "":
			return it.ActorUsername
		case id == it.Subject && it.SubjectUsername != "":
			return it.SubjectUsername
		}
		return id
	}
	if it.Kind == "webhook_disabled" {
		// subject is project/webhook id
		project, hook, _ := strings.Cut(it.Subject, "/")
		it.Text = fmt.Sprintf("A webhook of project %s was turned off: its deliveries failed for too long", project)
		it.Link = "/p/" + project + "/webhooks/" + hook
		return
	}
	it.Text = fmt.Sprintf("%s #%d %s", it.words(me, name), it.TicketID, it.Title)
	it.Link = fmt.Sprintf("/tickets/%d", it.TicketID)
	if it.CommentID > 0 && it.Kind != "comment_deleted" {
		it.Link += fmt.Sprintf("#comment-%d", it.CommentID)
	}
}

// Inbox returns user's notifications, newest first, limit from offset,
// and how many there are in all.
//
// Reads follow roles: notifications about tickets of a project user may
// no longer read are left out (kept in the projection, which replay
// rebuilds from the log alone, and shown again if the role comes back).
func Inbox(ctx context.Context, q events.Querier, user string, limit, offset int) ([]Item, int, error) {
	vis, vargs, err := visible(ctx, q, user)
	if err != nil {
		return nil, 0, err
	}
	var total int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM notifications n WHERE n.user_id = ? AND `+vis, append([]any{user}, vargs...)...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count notifications: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT n.position, n.ticket_id, COALESCE(t.title, ''), n.actor, n.kind, n.comment_id, n.subject, n.mentioned, n.occurred_at, n.read,
		COALESCE(a.username, ''), COALESCE(s.username, '')
		FROM notifications n LEFT JOIN tickets t ON t.id = n.ticket_id
		LEFT JOIN notify_people a ON a.user_id = n.actor LEFT JOIN notify_people s ON s.user_id = n.subject AND n.subject <> ''
		WHERE n.user_id = ? AND `+vis+` ORDER BY n.position DESC LIMIT ? OFFSET ?`, append(append([]any{user}, vargs...), limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("read notifications: %w", err)
	}
	defer rows.Close()
	out := []Item{}
	for rows.Next() {
		var it Item
		if err := rows.Scan(&it.Position, &it.TicketID, &it.Title, &it.Actor, &it.Kind, &it.CommentID, &it.Subject, &it.Mentioned, &it.OccurredAt, &it.Read,
			&it.ActorUsername, &it.SubjectUsername); err != nil {
			return nil, 0, err
		}
		it.fill(user)
		out = append(out, it)
	}
	return out, total, rows.Err()
}

// Unread counts user's unread notifications, of tickets they may read.
func Unread(ctx context.Context, q events.Querier, user string) (int, error) {
	vis, vargs, err := visible(ctx, q, user)
	if err != nil {
		return 0, err
	}
	var n int
	err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM notifications n WHERE n.user_id = ? AND n.read = 0 AND `+vis, append([]any{user}, vargs...)...).Scan(&n)
	return n, err
}

// visible is the SQL condition on notifications n that keeps those about
// tickets user may read now.
func visible(ctx context.Context, q events.Querier, user string) (string, []any, error) {
	s, err := access.ScopeOf(ctx, q, user)
	if err != nil {
		return "", nil, err
	}
	cond, args := s.TicketWhere("n.ticket_id")
	return cond, args, nil
}

// Watching says whether user watches ticket.
func Watching(ctx context.Context, q events.Querier, ticket int64, user string) (bool, error) {
	return watching(ctx, q, ticket, user)
}

// Watchers lists who watches ticket, by user id.
func Watchers(ctx context.Context, q events.Querier, ticket int64) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_id FROM watches WHERE ticket_id = ? AND watching = 1 ORDER BY user_id`, ticket)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// Email returns user's digest address, "" when none.
func Email(ctx context.Context, q events.Querier, user string) (string, error) {
	var e string
	err := q.QueryRowContext(ctx, `SELECT email FROM notify_emails WHERE user_id = ?`, user).Scan(&e)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return e, err
}
