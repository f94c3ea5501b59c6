// Package search finds tickets by what people type in the search box: a
// parser for a small query language (words, "phrases", OR, -word and
// filters such as author: or is:open), the index it searches (a projection
// of the ticket events, rebuilt by replay) and the query that ranks the
// matches and cuts a highlighted snippet from each.
package search

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"unicode"

	"braid/internal/events"
	"braid/internal/tickets"
)

// Register defines the search index's projection in reg over the ticket
// event types t: search_fts holds one row per ticket (rowid = ticket id)
// with title, body, comments, labels and the CJK pieces of all four;
// search_comments the live comments each row is built from.
func Register(reg *events.Registry, t tickets.Types) {
	p := reg.NewProjection("search", "search_fts", "search_comments")
	events.On(reg, p, t.Opened, func(ctx context.Context, q events.Querier, e *events.Event, d tickets.Opened) error {
		return put(ctx, q, e.AggregateID, doc{title: d.Title, body: d.Body, labels: strings.Join(d.Labels, " ")})
	})
	events.On(reg, p, t.Edited, func(ctx context.Context, q events.Querier, e *events.Event, d tickets.Edited) error {
		old, err := get(ctx, q, e.AggregateID)
		if err != nil {
			return err
		}
		old.title, old.body, old.labels = d.Title, d.Body, strings.Join(d.Labels, " ")
		return put(ctx, q, e.AggregateID, old)
	})
	events.On(reg, p, t.CommentAdded, func(ctx context.Context, q events.Querier, e *events.Event, d tickets.CommentAdded) error {
		if _, err := q.ExecContext(ctx, `INSERT INTO search_comments (ticket_id, id, author, body) VALUES (?, ?, ?, ?)`,
			e.AggregateID, d.CommentID, e.Actor, d.Body); err != nil {
			return err
		}
		return recomment(ctx, q, e.AggregateID)
	})
	events.On(reg, p, t.CommentEdited, func(ctx context.Context, q events.Querier, e *events.Event, d tickets.CommentEdited) error {
		if _, err := q.ExecContext(ctx, `UPDATE search_comments SET body = ? WHERE ticket_id = ? AND id = ?`,
			d.Body, e.AggregateID, d.CommentID); err != nil {
			return err
		}
		return recomment(ctx, q, e.AggregateID)
	})
	events.On(reg, p, t.CommentDeleted, func(ctx context.Context, q events.Querier, e *events.Event, d tickets.CommentDeleted) error {
		if _, err := q.ExecContext(ctx, `DELETE FROM search_comments WHERE ticket_id = ? AND id = ?`, e.AggregateID, d.CommentID); err != nil {
			return err
		}
		return recomment(ctx, q, e.AggregateID)
	})
	// An erasure (internal/erase) takes the erased words out of the index,
	// as a replay of the erased payloads' remnants would: a ticket's title
	// and description, a comment's text.
	events.On(reg, p, events.ErasedEvent, func(ctx context.Context, q events.Querier, e *events.Event, d events.Erasure) error {
		touched := map[string]bool{}
		for _, x := range d.Positions {
			ticket, ok := strings.CutPrefix(x.Aggregate, tickets.Aggregate+"/")
			if !ok || (x.Type != "comment_added" && x.Type != "comment_edited") {
				continue
			}
			var kept struct {
				CommentID int64 `json:"comment_id"`
			}
			x.KeptInto(&kept)
			if _, err := q.ExecContext(ctx, `UPDATE search_comments SET body = '' WHERE ticket_id = ? AND id = ?`, ticket, kept.CommentID); err != nil {
				return err
			}
			touched[ticket] = true
		}
		for ticket := range touched {
			if err := recomment(ctx, q, ticket); err != nil {
				return err
			}
		}
		for _, id := range d.Tickets {
			ticket := strconv.FormatInt(id, 10)
			old, err := get(ctx, q, ticket)
			if err != nil {
				return err
			}
			old.title, old.body = "", ""
			if err := put(ctx, q, ticket, old); err != nil {
				return err
			}
		}
		return nil
	})
}

// doc is a ticket's row of the index.
type doc struct{ title, body, comments, labels string }

// commentSep joins a ticket's comments in the comments column.
const commentSep = "\n\n"

func get(ctx context.Context, q events.Querier, id string) (doc, error) {
	var d doc
	err := q.QueryRowContext(ctx, `SELECT title, body, comments, labels FROM search_fts WHERE rowid = ?`, id).
		Scan(&d.title, &d.body, &d.comments, &d.labels)
	if errors.Is(err, sql.ErrNoRows) {
		return doc{}, nil // a ticket from before the index: its row starts now
	}
	return d, err
}

// put replaces the ticket's row. The statements are plain SQL on the
// table (no FTS5 commands, no MATCH), so replay may rebuild it as an
// ordinary table and fill the index in bulk.
func put(ctx context.Context, q events.Querier, id string, d doc) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM search_fts WHERE rowid = ?`, id); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, `INSERT INTO search_fts (rowid, title, body, comments, labels, cjk) VALUES (?, ?, ?, ?, ?, ?)`,
		id, d.title, d.body, d.comments, d.labels, cjkPieces(d.title, d.body, d.comments, d.labels))
	return err
}

// recomment rebuilds the ticket's row after a change to its comments.
func recomment(ctx context.Context, q events.Querier, id string) error {
	d, err := get(ctx, q, id)
	if err != nil {
		return err
	}
	rows, err := q.QueryContext(ctx, `SELECT body FROM search_comments WHERE ticket_id = ? ORDER BY id`, id)
	if err != nil {
		return err
	}
	defer rows.Close()
	var bodies []string
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return err
		}
		bodies = append(bodies, b)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	d.comments = strings.Join(bodies, commentSep)
	return put(ctx, q, id, d)
}

// isCJK reports whether r belongs to a script written without spaces
// between words: Han, Hiragana, Katakana, Hangul.
func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// cjkRuns returns the runs of CJK characters in s.
func cjkRuns(s string) []string {
	var runs []string
	start := -1
	for i, r := range s {
		switch {
		case isCJK(r) && start < 0:
			start = i
		case !isCJK(r) && start >= 0:
			runs = append(runs, s[start:i])
			start = -1
		}
	}
	if start >= 0 {
		runs = append(runs, s[start:])
	}
	return runs
}

// bigrams are the overlapping two-character pieces of a run, separated by
// spaces ("東京都" → "東京 京都"); a run of one character is itself.
func bigrams(run string) string {
	rs := []rune(run)
	if len(rs) < 2 {
		return run
	}
	var b strings.Builder
	for i := 0; i+1 < len(rs); i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(rs[i])
		b.WriteRune(rs[i+1])
	}
	return b.String()
}

// cjkPieces is the cjk column: the bigrams of every CJK run of the texts,
// one run per line.
func cjkPieces(texts ...string) string {
	var out []string
	for _, t := range texts {
		for _, r := range cjkRuns(t) {
			out = append(out, bigrams(r))
		}
	}
	return strings.Join(out, "\n")
}
