package tickets

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	// Author is a person id: tickets they opened.
	Author string `json:"author,omitempty"`
	// NoAssignee keeps only tickets nobody is assigned to.
	NoAssignee bool `json:"no_assignee,omitempty"`
	// NoLabel keeps only tickets without this label.
	NoLabel string `json:"no_label,omitempty"`
	// Sort is the order: updated (default, recently updated first),
	// created (newest first), created-asc (oldest first), comments (most
	// commented first).
	Sort string `json:"sort"`
	// Restricted limits the list to the projects in Visible (those the
	// reader may see); a site admin's list is not restricted.
	Restricted bool     `json:"-"`
	Visible    []string `json:"-"`
	// Match, set by a Searcher from Q, takes the place of the plain word
	// search.
	Match *Match `json:"-"`
	// Fields and FieldSort are the list's field.NAME=VALUE and
	// sort=field.NAME (internal/fields); Where (with WhereArgs) is their
	// SQL over the list's ticket t and Keyed their order, filled by
	// Handlers.FieldClauses. Keyed takes the place of Sort.
	Fields    map[string]string `json:"fields,omitempty"`
	FieldSort string            `json:"field_sort,omitempty"`
	Where     []string          `json:"-"`
	WhereArgs []any             `json:"-"`
	Keyed     *Keyed            `json:"-"`
}

// Keyed is an order read from an index of sort keys rather than computed
// for every ticket: the tickets t that have a key (From joins the keys k
// to t, Cond with Args picks them) in Order, which the index gives, then
// those without one (None on t, with NoneArgs), newest first.
type Keyed struct {
	From, Cond, Order string
	Args              []any
	None              string
	NoneArgs          []any
}

// Match is what a search asks of the list, as SQL. Where (with Args)
// narrows the tickets t. When Cond is set, the list joins the search
// index: From names the index as f joined to t, Cond (with CondArgs) is
// its MATCH, and the newest Newest tickets that match (and pass Where)
// are put best first by Order (given their ids, newest first). Bounding
// the candidates keeps a search for a word in every ticket as fast as one
// for a rare word.
type Match struct {
	Where    []string
	Args     []any
	From     string
	Cond     string
	CondArgs []any
	Order    func(ctx context.Context, q events.Querier, ids []int64) ([]int64, error)
	Newest   int
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
	// Snippet is where the search's words matched, as HTML: the text
	// escaped, the words in <mark>. SnippetIn says where ("body",
	// "comment", "labels"); SnippetBy is a comment's author (a person id).
	Snippet           string `json:"snippet,omitempty"`
	SnippetIn         string `json:"snippet_in,omitempty"`
	SnippetBy         string `json:"snippet_by,omitempty"`
	SnippetByUsername string `json:"snippet_by_username,omitempty"`
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
	// Capped says a search's words matched more tickets than it ranks:
	// the counts and pages cover the newest Match.Newest matches.
	Capped bool `json:"capped,omitempty"`
}

// sortOrders maps each sort to its ORDER BY; each has an index (0027).
var sortOrders = map[string]string{
	"":            "t.updated_at DESC, t.id DESC",
	"updated":     "t.updated_at DESC, t.id DESC",
	"created":     "t.id DESC", // ticket numbers are given in the order tickets are opened
	"created-asc": "t.id ASC",
	"comments":    "t.comment_count DESC, t.id DESC",
}

// Sorts lists the list's orders, the default first.
var Sorts = []string{"updated", "created", "created-asc", "comments"}

// maxFilterChars bounds a filter's value (a label, a person).
const maxFilterChars = 100

// Limits of a text search: what a person types, not a query language.
const (
	maxSearchChars = 1000
	maxSearchWords = 40
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
	if _, ok := sortOrders[f.Sort]; !ok {
		return errs.Field("sort", "sort is updated, created, created-asc or comments; not %q", f.Sort)
	}
	if f.Sort == "" {
		f.Sort = "updated"
	}
	if f.Page < 1 {
		f.Page = 1
	}
	f.Assignee, f.Label = strings.TrimSpace(f.Assignee), strings.ToLower(strings.TrimSpace(f.Label))
	f.Author, f.NoLabel = strings.TrimSpace(f.Author), strings.ToLower(strings.TrimSpace(f.NoLabel))
	for _, v := range []struct{ name, s string }{{"label", f.Label}, {"no_label", f.NoLabel}, {"assignee", f.Assignee}, {"author", f.Author}} {
		if !utf8.ValidString(v.s) || utf8.RuneCountInString(v.s) > maxFilterChars {
			return errs.Field(v.name, "%s is at most %d characters of text.", v.name, maxFilterChars)
		}
	}
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

// Query lists tickets matching f in f.Sort's order.
func Query(ctx context.Context, q events.Querier, f Filter) (List, error) {
	if err := f.Normalize(); err != nil {
		return List{}, err
	}
	where, args := []string{"1=1"}, []any{}
	// The counts of a list filtered by project only come from the tables
	// the projection keeps; any other filter counts over the matches.
	counts, countArgs := []string{"1=1"}, []any{}
	if f.Project != "" {
		counts, countArgs = append(counts, "project = ?"), append(countArgs, f.Project)
		where, args = append(where, "t.project = ?"), append(args, f.Project)
	}
	if f.Restricted {
		// The projects the reader may see, as bound parameters.
		in := strings.TrimSuffix(strings.Repeat("?,", len(f.Visible)), ",")
		if in == "" {
			in = "NULL"
		}
		where = append(where, "t.project IN ("+in+")")
		counts = append(counts, "project IN ("+in+")")
		for _, p := range f.Visible {
			args, countArgs = append(args, p), append(countArgs, p)
		}
	}
	if f.Assignee != "" {
		where, args = append(where, "t.assignee = ?"), append(args, f.Assignee)
	}
	if f.Label != "" {
		where, args = append(where, "EXISTS (SELECT 1 FROM ticket_labels l WHERE l.ticket_id = t.id AND l.label = ?)"), append(args, f.Label)
	}
	if f.Author != "" {
		where, args = append(where, "t.author = ?"), append(args, f.Author)
	}
	if f.NoAssignee {
		where = append(where, "t.assignee = ''")
	}
	if f.NoLabel != "" {
		where, args = append(where, "NOT EXISTS (SELECT 1 FROM ticket_labels l WHERE l.ticket_id = t.id AND l.label = ?)"), append(args, f.NoLabel)
	}
	if m := f.Match; m != nil {
		where, args = append(where, m.Where...), append(args, m.Args...)
	} else if fq := ftsQuery(f.Q); fq != "" {
		where, args = append(where, "t.id IN (SELECT rowid FROM tickets_fts WHERE tickets_fts MATCH ?)"), append(args, fq)
	}
	where, args = append(where, f.Where...), append(args, f.WhereArgs...) // custom fields (internal/fields)
	if m := f.Match; m != nil && m.Cond != "" {
		return ranked(ctx, q, f, where, args)
	}
	l := List{Filter: f, Tickets: []Row{}, Page: f.Page}
	// With no filter but status, the counts come from the tables the
	// projection keeps; otherwise they are counted over the matches.
	countSQL, cargs := `SELECT t.status, COUNT(*) FROM tickets t WHERE `+strings.Join(where, " AND ")+` GROUP BY t.status`, args
	switch {
	case len(where) == 1:
		countSQL, cargs = `SELECT status, n FROM ticket_counts`, nil
	case len(where) == len(counts):
		countSQL, cargs = `SELECT status, SUM(n) FROM ticket_project_counts WHERE `+strings.Join(counts, " AND ")+` GROUP BY status`, countArgs
	}
	rows, err := q.QueryContext(ctx, countSQL, cargs...)
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
	if k := f.Keyed; k != nil {
		l.Tickets, err = keyedPage(ctx, q, k, where, args, (f.Page-1)*PerPage)
		return l, err
	}
	order := sortOrders[f.Sort]
	args = append(args, PerPage, (f.Page-1)*PerPage)
	rows, err = q.QueryContext(ctx, listSelect+`tickets t WHERE `+strings.Join(where, " AND ")+` ORDER BY `+order+` LIMIT ? OFFSET ?`, args...)
	if err != nil {
		return l, fmt.Errorf("list tickets: %w", err)
	}
	l.Tickets, err = scanRows(rows, l.Tickets)
	return l, err
}

// listSelect reads a Row of ticket t, from the tables that follow it.
const listSelect = `SELECT t.id, t.title, t.status, t.assignee, t.author, t.comment_count, t.updated_at,
		COALESCE((SELECT group_concat(label, ',') FROM (SELECT label FROM ticket_labels WHERE ticket_id = t.id ORDER BY label)), '')
		FROM `

// keyedPage reads the page starting at offset of the tickets passing
// where (with args) in k's order: those with a key first, read from its
// index in order (a page stops after PerPage rows), then the others. Only
// a page past the last keyed ticket counts the keyed ones, to know where
// the others start.
func keyedPage(ctx context.Context, q events.Querier, k *Keyed, where []string, args []any, offset int) ([]Row, error) {
	cond := strings.Join(where, " AND ")
	a := append(append(append([]any{}, k.Args...), args...), PerPage, offset)
	rows, err := q.QueryContext(ctx, listSelect+k.From+` WHERE `+k.Cond+` AND `+cond+` ORDER BY `+k.Order+` LIMIT ? OFFSET ?`, a...)
	if err != nil {
		return nil, fmt.Errorf("list tickets by key: %w", err)
	}
	got, err := scanRows(rows, []Row{})
	if err != nil || len(got) == PerPage {
		return got, err
	}
	keyed := offset + len(got)
	if len(got) == 0 {
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM `+k.From+` WHERE `+k.Cond+` AND `+cond,
			append(append([]any{}, k.Args...), args...)...).Scan(&keyed); err != nil {
			return nil, fmt.Errorf("count tickets by key: %w", err)
		}
	}
	a = append(append(append([]any{}, args...), k.NoneArgs...), PerPage-len(got), max(0, offset-keyed))
	rows, err = q.QueryContext(ctx, listSelect+`tickets t WHERE `+cond+` AND `+k.None+` ORDER BY t.id DESC LIMIT ? OFFSET ?`, a...)
	if err != nil {
		return nil, fmt.Errorf("list tickets without a key: %w", err)
	}
	return scanRows(rows, got)
}

func scanRows(rows *sql.Rows, out []Row) ([]Row, error) {
	defer rows.Close()
	for rows.Next() {
		var r Row
		var labels string
		if err := rows.Scan(&r.ID, &r.Title, &r.Status, &r.Assignee, &r.Author, &r.CommentCount, &r.UpdatedAt, &labels); err != nil {
			return out, err
		}
		r.Labels = splitLabels(labels)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ranked lists the tickets whose words match f.Match, best first: one
// query takes the newest Match.Newest matches that pass the other filters
// (where) with their rank, in rank order; the counts and the page come
// from them, then the page's rows are read.
func ranked(ctx context.Context, q events.Querier, f Filter, where []string, args []any) (List, error) {
	m := f.Match
	l := List{Filter: f, Tickets: []Row{}, Page: f.Page}
	rows, err := q.QueryContext(ctx, `SELECT t.id, t.status FROM `+m.From+` WHERE `+m.Cond+` AND `+strings.Join(where, " AND ")+`
		ORDER BY f.rowid DESC LIMIT `+strconv.Itoa(m.Newest), append(append([]any{}, m.CondArgs...), args...)...)
	if err != nil {
		return l, fmt.Errorf("search tickets: %w", err)
	}
	var all []int64
	status := map[int64]bool{} // open
	for rows.Next() {
		var id int64
		var st string
		if err := rows.Scan(&id, &st); err != nil {
			rows.Close()
			return l, err
		}
		all = append(all, id)
		if st == "open" {
			l.Open++
			status[id] = true
		} else {
			l.Closed++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return l, err
	}
	n := len(all)
	if m.Order != nil {
		if all, err = m.Order(ctx, q, all); err != nil {
			return l, err
		}
	}
	var ids []any
	for _, id := range all {
		st := "closed"
		if status[id] {
			st = "open"
		}
		if f.Status == "all" || f.Status == st {
			ids = append(ids, id)
		}
	}
	l.Capped = n >= m.Newest
	l.Total = int64(len(ids))
	l.Pages = max(1, (len(ids)+PerPage-1)/PerPage)
	if f.Page > l.Pages {
		f.Page = l.Pages
		l.Page, l.Filter.Page = f.Page, f.Page
	}
	page := ids[min(len(ids), (f.Page-1)*PerPage):min(len(ids), f.Page*PerPage)]
	if len(page) == 0 {
		return l, nil
	}
	in := strings.TrimSuffix(strings.Repeat("?,", len(page)), ",")
	rows, err = q.QueryContext(ctx, listSelect+`tickets t WHERE t.id IN (`+in+`)`, page...)
	if err != nil {
		return l, fmt.Errorf("list tickets: %w", err)
	}
	got, err := scanRows(rows, nil)
	if err != nil {
		return l, err
	}
	at := map[int64]int{}
	for i, id := range page {
		at[id.(int64)] = i
	}
	slices.SortFunc(got, func(a, b Row) int { return at[a.ID] - at[b.ID] })
	l.Tickets = got
	return l, nil
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
	var erasedAt, erasedBy string
	err := q.QueryRowContext(ctx, `SELECT title, body, status, assignee, author, version, opened_at, updated_at, project,
		COALESCE((SELECT group_concat(label, ',') FROM (SELECT label FROM ticket_labels WHERE ticket_id = tickets.id ORDER BY rowid)), ''),
		erased_at, erased_by_role
		FROM tickets WHERE id = ?`, id).
		Scan(&t.Title, &t.Body, &t.Status, &t.Assignee, &t.Author, &t.Version, &t.OpenedAt, &t.UpdatedAt, &t.Project, &labels, &erasedAt, &erasedBy)
	t.Erased = newErasure(erasedAt, erasedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return t, errs.E(errs.NotFound, "There is no ticket #%d.", id)
	}
	if err != nil {
		return t, fmt.Errorf("ticket %d: %w", id, err)
	}
	t.Labels = splitLabels(labels)
	// Where an imported ticket came from is in its ticket_opened only
	// (internal/importer): read it from there, the first event (its
	// payload row for braid v2, the events row for v1).
	var opened string
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(p.data, e.data) FROM events e LEFT JOIN payloads p ON p.position = e.position
		WHERE e.aggregate_type = ? AND e.aggregate_id = ? AND e.version = 1`,
		Aggregate, strconv.FormatInt(id, 10)).Scan(&opened); err == nil && strings.Contains(opened, `"imported"`) {
		var d Opened
		if json.Unmarshal([]byte(opened), &d) == nil {
			t.Imported = d.Imported
		}
	}
	rows, err := q.QueryContext(ctx, `SELECT id, author, body, created_at, edited_at, position, erased_at, erased_by_role FROM comments WHERE ticket_id = ? ORDER BY id`, id)
	if err != nil {
		return t, fmt.Errorf("comments of %d: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c Comment
		if err := rows.Scan(&c.ID, &c.Author, &c.Body, &c.CreatedAt, &c.EditedAt, &c.Position, &erasedAt, &erasedBy); err != nil {
			return t, err
		}
		c.Erased = newErasure(erasedAt, erasedBy)
		t.Comments = append(t.Comments, c)
	}
	if err := rows.Err(); err != nil {
		return t, err
	}
	t.Attachments, err = Attachments(ctx, q, id)
	return t, err
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
		ch := diff(before, s, &evs[i])
		if evs[i].ErasedBy != 0 { // internal/erase: its text is gone; say so
			ch = append([]Change{{Field: "payload", After: "(payload erased)"}}, ch...)
		}
		steps = append(steps, Step{Event: evs[i], Changes: ch})
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
