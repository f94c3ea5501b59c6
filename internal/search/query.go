package search

import (
	"context"
	"fmt"
	"html"
	"strings"
	"unicode/utf8"

	"braid/internal/auth"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/tickets"
)

// Weights of the columns in the ranking (bm25): a word in the title counts
// most, then labels, the body, then comments.
const rankSQL = `SELECT rowid, bm25(search_fts, 10.0, 4.0, 2.0, 5.0, 3.0) AS rank FROM search_fts WHERE search_fts MATCH ?`

// wordCols are the columns a word or phrase is looked for in (cjk holds
// the pieces of CJK runs, searched separately).
const wordCols = "{title body comments labels}"

// Searcher reads the search box for the ticket list (tickets.Searcher).
type Searcher struct{}

// Apply parses f.Q and sets f.Match (and f.Status for is:) from it:
// names in filters are resolved to people, words become an FTS5 query of
// quoted strings only, so nothing typed is FTS5 syntax.
func (Searcher) Apply(ctx context.Context, q events.Querier, f *tickets.Filter) error {
	pq, err := Parse(f.Q)
	if err != nil {
		return err
	}
	m := &tickets.Match{}
	if pq.Status != "" {
		f.Status = pq.Status
	}
	for _, p := range []struct{ name, col string }{{pq.Author, "author"}, {pq.Assignee, "assignee"}} {
		if p.name == "" {
			continue
		}
		id, err := auth.IDByUsername(ctx, q, p.name)
		if errs.Code(err) == errs.NotFound {
			return errs.Field("q", "%s:%s: nobody is called %q", p.col, p.name, p.name)
		}
		if err != nil {
			return err
		}
		m.Where, m.Args = append(m.Where, "t."+p.col+" = ?"), append(m.Args, id)
	}
	for _, l := range pq.Labels {
		m.Where = append(m.Where, "EXISTS (SELECT 1 FROM ticket_labels l WHERE l.ticket_id = t.id AND l.label = ?)")
		m.Args = append(m.Args, l)
	}
	if pq.NoAssignee {
		m.Where = append(m.Where, "t.assignee = ''")
	}
	if pq.NoLabel {
		m.Where = append(m.Where, "NOT EXISTS (SELECT 1 FROM ticket_labels l WHERE l.ticket_id = t.id)")
	}
	if len(pq.Not) > 0 {
		var alts []string
		for _, t := range pq.Not {
			alts = append(alts, ftsTerm(Term{Text: t.Text, Phrase: true}))
		}
		m.Where = append(m.Where, "t.id NOT IN (SELECT rowid FROM search_fts WHERE search_fts MATCH ?)")
		m.Args = append(m.Args, strings.Join(alts, " OR "))
	}
	if e := pq.Match(); e != "" {
		m.Rank, m.RankArgs = rankSQL, []any{e}
	}
	f.Match = m
	return nil
}

// Match is the FTS5 query of the words to find ("" if none): each group
// in parentheses, its terms joined by OR, the groups by AND.
func (q Query) Match() string {
	var groups []string
	for _, g := range q.Words {
		var alts []string
		for _, t := range g {
			alts = append(alts, ftsTerm(t))
		}
		groups = append(groups, "("+strings.Join(alts, " OR ")+")")
	}
	return strings.Join(groups, " AND ")
}

// ftsTerm is one term as FTS5 query: every piece a quoted string with its
// quotes doubled, so no operator, column name, NEAR or star typed by a
// person is ever read as syntax. A word is a prefix (people type); a
// phrase is whole. CJK runs in it are looked up by their pieces in the cjk
// column; the rest in the word columns.
func ftsTerm(t Term) string {
	rest := t.Text
	var parts []string
	for _, run := range cjkRuns(t.Text) {
		rest = strings.Replace(rest, run, " ", 1)
		star := ""
		if utf8.RuneCountInString(run) == 1 {
			star = "*"
		}
		parts = append(parts, `cjk : "`+bigrams(run)+`"`+star)
	}
	if searchable(rest) {
		rest = strings.TrimSpace(rest)
		star := "*"
		if t.Phrase {
			star = ""
		}
		parts = append(parts, wordCols+` : "`+strings.ReplaceAll(rest, `"`, `""`)+`"`+star)
	}
	if len(parts) == 0 { // unreachable: the parser keeps only searchable terms
		return `""`
	}
	return "(" + strings.Join(parts, " AND ") + ")"
}

// Snippets fills the rows' snippets: for each ticket, where the words of
// the search matched (its body, a comment or its labels), with the words
// marked.
func (Searcher) Snippets(ctx context.Context, q events.Querier, f tickets.Filter, rows []tickets.Row) error {
	if f.Match == nil || f.Match.Rank == "" || len(rows) == 0 {
		return nil
	}
	pq, err := Parse(f.Q)
	if err != nil {
		return err
	}
	byID := map[int64]*tickets.Row{}
	in := make([]string, len(rows))
	args := []any{f.Match.RankArgs[0]}
	for i := range rows {
		byID[rows[i].ID] = &rows[i]
		in[i] = "?"
		args = append(args, rows[i].ID)
	}
	const mark = `'` + open + `', '` + shut + `', '…', 20`
	res, err := q.QueryContext(ctx, `SELECT rowid, snippet(search_fts, 1, `+mark+`), snippet(search_fts, 2, `+mark+`),
		snippet(search_fts, 3, `+mark+`), body, comments
		FROM search_fts WHERE search_fts MATCH ? AND rowid IN (`+strings.Join(in, ",")+`)`, args...)
	if err != nil {
		return fmt.Errorf("snippets: %w", err)
	}
	type hit struct {
		id             int64
		snip, in, find string
	}
	var hits []hit
	for res.Next() {
		var id int64
		var body, comments, labels, rawBody, rawComments string
		if err := res.Scan(&id, &body, &comments, &labels, &rawBody, &rawComments); err != nil {
			res.Close()
			return err
		}
		h := hit{id: id}
		switch {
		case strings.Contains(body, open):
			h.snip, h.in = body, "body"
		case strings.Contains(comments, open):
			h.snip, h.in = comments, "comment"
		case strings.Contains(labels, open):
			h.snip, h.in = labels, "labels"
		default: // CJK pieces matched: find the run in the text
			h.snip, h.in = cjkSnippet(pq, rawBody), "body"
			if h.snip == "" {
				h.snip, h.in = cjkSnippet(pq, rawComments), "comment"
			}
		}
		if h.snip == "" {
			continue // only the title matched: the list shows it
		}
		if h.in == "comment" {
			h.find = firstMarked(h.snip)
		}
		hits = append(hits, h)
	}
	res.Close()
	if err := res.Err(); err != nil {
		return err
	}
	for _, h := range hits {
		r := byID[h.id]
		r.Snippet, r.SnippetIn = markHTML(h.snip), h.in
		if h.find != "" {
			if r.SnippetBy, err = commentAuthor(ctx, q, h.id, h.find); err != nil {
				return err
			}
		}
	}
	return nil
}

// The sentinels snippet() puts around a match: control characters, which
// the text of a ticket cannot hold (internal/input refuses them).
const (
	open = "\x01"
	shut = "\x02"
)

// maxSnippet bounds a snippet (a CJK run is one token to snippet()).
const maxSnippet = 300

// markHTML turns snippet() output into HTML: everything escaped, then the
// sentinels (and only they) turned into <mark> and </mark>, balanced.
func markHTML(s string) string {
	if utf8.RuneCountInString(s) > maxSnippet {
		s = string([]rune(s)[:maxSnippet]) + "…"
	}
	var b strings.Builder
	in := false
	for _, part := range strings.SplitAfter(s, "") {
		switch part {
		case open:
			if !in {
				b.WriteString("<mark>")
				in = true
			}
		case shut:
			if in {
				b.WriteString("</mark>")
				in = false
			}
		default:
			b.WriteString(html.EscapeString(part))
		}
	}
	if in {
		b.WriteString("</mark>")
	}
	return b.String()
}

// firstMarked is the text of the first match in a snippet.
func firstMarked(s string) string {
	i := strings.Index(s, open)
	if i < 0 {
		return ""
	}
	s = s[i+1:]
	if j := strings.Index(s, shut); j >= 0 {
		s = s[:j]
	}
	return s
}

// cjkSnippet cuts a window of text around the first CJK run of the
// search's words found in it, with the run marked; "" if none is.
func cjkSnippet(q Query, text string) string {
	for _, g := range q.Words {
		for _, t := range g {
			for _, run := range cjkRuns(t.Text) {
				i := strings.Index(text, run)
				if i < 0 {
					continue
				}
				before := []rune(text[:i])
				lead := ""
				if len(before) > 40 {
					before, lead = before[len(before)-40:], "…"
				}
				after := []rune(text[i+len(run):])
				tail := ""
				if len(after) > 80 {
					after, tail = after[:80], "…"
				}
				return lead + string(before) + open + run + shut + string(after) + tail
			}
		}
	}
	return ""
}

// commentAuthor is the author of the first of the ticket's comments that
// holds text (ignoring case), or "".
func commentAuthor(ctx context.Context, q events.Querier, ticket int64, text string) (string, error) {
	rows, err := q.QueryContext(ctx, `SELECT author, body FROM search_comments WHERE ticket_id = ? ORDER BY id`, ticket)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	text = strings.ToLower(text)
	for rows.Next() {
		var author, body string
		if err := rows.Scan(&author, &body); err != nil {
			return "", err
		}
		if strings.Contains(strings.ToLower(body), text) {
			return author, nil
		}
	}
	return "", rows.Err()
}
