package tickets

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"braid/internal/errs"
	"braid/internal/events"
)

// Filter is what the list page asks for.
type Filter struct {
	Status   string `json:"status"` // open (default), closed, all
	Assignee string `json:"assignee"`
	Label    string `json:"label"`
	Q        string `json:"q"`
	Project  string `json:"project"` // a project's slug; empty for every project
	Page     int    `json:"page"`
	// Restricted limits the list to the projects in Visible (those the
	// reader may see); a site admin's list is not restricted.
	Restricted bool     `json:"-"`
	Visible    []string `json:"-"`
	// Fields and FieldSort are the list's field.NAME=VALUE and
	// sort=field.NAME (internal/fields); Where and Order are their SQL over
	// the list's ticket t, with arguments, filled by Handlers.FieldClauses.
	Fields    map[string]string `json:"fields,omitempty"`
	FieldSort string            `json:"field_sort,omitempty"`
	Where     []string          `json:"-"`
	WhereArgs []any             `json:"-"`
	Order     string            `json:"-"`
	OrderArgs []any             `json:"-"`
}

// PerPage is the list's page size.
const PerPage = 25

// Row is one ticket in the list.
type Row struct {
	ID       int64  `json:"id"`
	Title    string `json:"title"`
	Status   string `json:"status"`
	Assignee string `json:"assignee"` // a person id
	Author   string `json:"author"`   // a person id
	// The current usernames of both, filled for JSON answers.
	AssigneeUsername string   `json:"assignee_username,omitempty"`
	AuthorUsername   string   `json:"author_username,omitempty"`
	Labels           []string `json:"labels"`
	CommentCount     int64    `json:"comment_count"`
	UpdatedAt        string   `json:"updated_at"`
}

// List is a page of tickets with counts.
type List struct {
	Filter  Filter `json:"filter"`
	Tickets []Row  `json:"tickets"`
	Open    int64  `json:"open"`   // matching the other filters
	Closed  int64  `json:"closed"` // matching the other filters
	Total   int64  `json:"total"`  // matching every filter
	Page    int    `json:"page"`
	Pages   int    `json:"pages"`
}

// Limits of a text search: what a person types, not a query language.
const (
	maxSearchChars = 200
	maxSearchWords = 20
)

// ftsQuery turns what a person typed into an FTS5 query of quoted terms
// (each word one string, `"` doubled), so nothing typed is ever FTS syntax.
// s has been through Normalize: valid UTF-8 without control characters.
func ftsQuery(s string) string {
	var terms []string
	for _, w := range strings.Fields(s) {
		terms = append(terms, `"`+strings.ReplaceAll(w, `"`, `""`)+`"`)
	}
	return strings.Join(terms, " ")
}

// Normalize fills in defaults and refuses what cannot be asked.
func (f *Filter) Normalize() error {
	switch f.Status {
	case "":
		f.Status = "open"
	case "open", "closed", "all":
	default:
		return errs.Field("status", "status is open, closed or all; not %q", f.Status)
	}
	if f.Page < 1 {
		f.Page = 1
	}
	f.Assignee, f.Label = strings.TrimSpace(f.Assignee), strings.ToLower(strings.TrimSpace(f.Label))
	q, err := searchText(f.Q)
	if err != nil {
		return err
	}
	f.Q = q
	return nil
}

// searchText cleans what a person typed into the search box: control
// characters (NUL, escapes; SQLite's FTS5 reads a NUL as the end of the
// query) count as spaces; text that is not UTF-8 or too long is refused.
func searchText(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errs.Field("q", "The search is not valid UTF-8 text.")
	}
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s))
	if n := utf8.RuneCountInString(s); n > maxSearchChars {
		return "", errs.Field("q", "Keep the search to %d characters; it has %d.", maxSearchChars, n)
	}
	if n := len(strings.Fields(s)); n > maxSearchWords {
		return "", errs.Field("q", "Search for at most %d words; the search has %d.", maxSearchWords, n)
	}
	return s, nil
}

// Query lists tickets matching f, newest first.
func Query(ctx context.Context, q events.Querier, f Filter) (List, error) {
	if err := f.Normalize(); err != nil {
		return List{}, err
	}
	where, args := []string{"1=1"}, []any{}
	if f.Project != "" {
		where, args = append(where, "t.project = ?"), append(args, f.Project)
	}
	if f.Restricted {
		// The projects the reader may see, as bound parameters.
		in := strings.TrimSuffix(strings.Repeat("?,", len(f.Visible)), ",")
		if in == "" {
			in = "NULL"
		}
		where = append(where, "t.project IN ("+in+")")
		for _, p := range f.Visible {
			args = append(args, p)
		}
	}
	if f.Assignee != "" {
		where, args = append(where, "t.assignee = ?"), append(args, f.Assignee)
	}
	if f.Label != "" {
		where, args = append(where, "EXISTS (SELECT 1 FROM ticket_labels l WHERE l.ticket_id = t.id AND l.label = ?)"), append(args, f.Label)
	}
	if fq := ftsQuery(f.Q); fq != "" {
		where, args = append(where, "t.id IN (SELECT rowid FROM tickets_fts WHERE tickets_fts MATCH ?)"), append(args, fq)
	}
	where, args = append(where, f.Where...), append(args, f.WhereArgs...)
	l := List{Filter: f, Tickets: []Row{}, Page: f.Page}
	// With no filter but status, the counts come from the table the
	// projection keeps; otherwise they are counted over the matches.
	countSQL := `SELECT t.status, COUNT(*) FROM tickets t WHERE ` + strings.Join(where, " AND ") + ` GROUP BY t.status`
	if len(where) == 1 {
		countSQL = `SELECT status, n FROM ticket_counts`
	}
	rows, err := q.QueryContext(ctx, countSQL, args...)
	if err != nil {
		return l, fmt.Errorf("count tickets: %w", err)
	}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			rows.Close()
			return l, err
		}
		if st == "open" {
			l.Open = n
		} else {
			l.Closed = n
		}
	}
	rows.Close()
	switch f.Status {
	case "open":
		l.Total = l.Open
		where = append(where, "t.status = 'open'")
	case "closed":
		l.Total = l.Closed
		where = append(where, "t.status = 'closed'")
	default:
		l.Total = l.Open + l.Closed
	}
	l.Pages = int((l.Total + PerPage - 1) / PerPage)
	if l.Pages == 0 {
		l.Pages = 1
	}
	if f.Page > l.Pages { // past the last page (or an overflowing number): the last page
		f.Page = l.Pages
		l.Page, l.Filter.Page = f.Page, f.Page
	}
	order := "t.id DESC"
	if f.Order != "" {
		order, args = f.Order, append(args, f.OrderArgs...)
	}
	args = append(args, PerPage, (f.Page-1)*PerPage)
	rows, err = q.QueryContext(ctx, `SELECT t.id, t.title, t.status, t.assignee, t.author, t.comment_count, t.updated_at,
		COALESCE((SELECT group_concat(label, ',') FROM (SELECT label FROM ticket_labels WHERE ticket_id = t.id ORDER BY label)), '')
		FROM tickets t WHERE `+strings.Join(where, " AND ")+` ORDER BY `+order+` LIMIT ? OFFSET ?`, args...)
	if err != nil {
		return l, fmt.Errorf("list tickets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r Row
		var labels string
		if err := rows.Scan(&r.ID, &r.Title, &r.Status, &r.Assignee, &r.Author, &r.CommentCount, &r.UpdatedAt, &labels); err != nil {
			return l, err
		}
		r.Labels = splitLabels(labels)
		l.Tickets = append(l.Tickets, r)
	}
	return l, rows.Err()
}

func splitLabels(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// Get reads a ticket and its comments from the read tables.
func Get(ctx context.Context, q events.Querier, id int64) (Ticket, error) {
	t := Ticket{ID: id, Comments: []Comment{}}
	var labels string
	err := q.QueryRowContext(ctx, `SELECT title, body, status, assignee, author, version, opened_at, updated_at, project,
		COALESCE((SELECT group_concat(label, ',') FROM (SELECT label FROM ticket_labels WHERE ticket_id = tickets.id ORDER BY rowid)), '')
		FROM tickets WHERE id = ?`, id).
		Scan(&t.Title, &t.Body, &t.Status, &t.Assignee, &t.Author, &t.Version, &t.OpenedAt, &t.UpdatedAt, &t.Project, &labels)
	if errors.Is(err, sql.ErrNoRows) {
		return t, errs.E(errs.NotFound, "There is no ticket #%d.", id)
	}
	if err != nil {
		return t, fmt.Errorf("ticket %d: %w", id, err)
	}
	t.Labels = splitLabels(labels)
	rows, err := q.QueryContext(ctx, `SELECT id, author, body, created_at, edited_at, position FROM comments WHERE ticket_id = ? ORDER BY id`, id)
	if err != nil {
		return t, fmt.Errorf("comments of %d: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c Comment
		if err := rows.Scan(&c.ID, &c.Author, &c.Body, &c.CreatedAt, &c.EditedAt, &c.Position); err != nil {
			return t, err
		}
		t.Comments = append(t.Comments, c)
	}
	return t, rows.Err()
}

// AsOf folds the ticket's events up to log position p: the ticket as it
// stood then, computed from the log, not from a stored copy.
func (t Types) AsOf(ctx context.Context, q events.Querier, r *events.Registry, id int64, p int64) (Ticket, error) {
	evs, err := events.Aggregate(ctx, q, Aggregate, strconv.FormatInt(id, 10), p)
	if err != nil {
		return Ticket{}, err
	}
	if len(evs) == 0 {
		return Ticket{}, errs.E(errs.NotFound, "Ticket #%d did not exist at position %d.", id, p)
	}
	s := t.Fold(evs, r)
	visible := []Comment{}
	for _, c := range s.Comments {
		if !c.Deleted {
			visible = append(visible, c)
		}
	}
	s.Comments = visible
	return s, nil
}

// Change is one field an event changed, before and after.
type Change struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// Step is one event of a ticket's history with what it changed.
type Step struct {
	Event   events.Event `json:"-"`
	Changes []Change     `json:"changes"`
}

// History returns every event of the ticket with what each changed.
func (t Types) History(ctx context.Context, q events.Querier, r *events.Registry, id int64) ([]Step, error) {
	evs, err := events.Aggregate(ctx, q, Aggregate, strconv.FormatInt(id, 10), 0)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, errs.E(errs.NotFound, "There is no ticket #%d.", id)
	}
	var s Ticket
	steps := make([]Step, 0, len(evs))
	for i := range evs {
		before := s
		s = t.Apply(s, &evs[i], r)
		steps = append(steps, Step{Event: evs[i], Changes: diff(before, s, &evs[i])})
	}
	return steps, nil
}

func diff(a, b Ticket, e *events.Event) []Change {
	var out []Change
	add := func(field, x, y string) {
		if x != y {
			out = append(out, Change{Field: field, Before: x, After: y})
		}
	}
	add("title", a.Title, b.Title)
	add("body", a.Body, b.Body)
	add("labels", strings.Join(a.Labels, ", "), strings.Join(b.Labels, ", "))
	add("status", a.Status, b.Status)
	add("assignee", a.Assignee, b.Assignee)
	// Events of internal/fields on the ticket: a field's value, a relation.
	switch e.Type {
	case "ticket_field_set":
		var d struct{ Field, Value string }
		if json.Unmarshal(e.Data, &d) == nil {
			out = append(out, Change{Field: d.Field, After: d.Value})
		}
	case "relation_added", "relation_removed":
		var d struct {
			Kind  string
			Other int64
		}
		if json.Unmarshal(e.Data, &d) == nil {
			r := strings.ReplaceAll(d.Kind, "_", " ") + " #" + strconv.FormatInt(d.Other, 10)
			if e.Type == "relation_added" {
				out = append(out, Change{Field: "relation", After: r})
			} else {
				out = append(out, Change{Field: "relation", Before: r})
			}
		}
	}
	for _, cb := range b.Comments {
		ca, _ := findComment(a.Comments, cb.ID)
		switch {
		case ca == nil:
			add(fmt.Sprintf("comment %d", cb.ID), "", cb.Body)
		case cb.Deleted && !ca.Deleted:
			out = append(out, Change{Field: fmt.Sprintf("comment %d", cb.ID), Before: ca.Body, After: "(deleted)"})
		default:
			add(fmt.Sprintf("comment %d", cb.ID), ca.Body, cb.Body)
		}
	}
	return out
}

func findComment(cs []Comment, id int64) (*Comment, bool) {
	for i := range cs {
		if cs[i].ID == id {
			return &cs[i], true
		}
	}
	return nil, false
}
