package search

import (
	"context"
	"fmt"
	"html"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"braid/internal/auth"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/tickets"
)

// The ranking: bm25 with weights per column, so a word in the title counts
// most, then labels, the body, the CJK pieces, then comments.
const rankSQL = `bm25(f.search_fts, 10.0, 4.0, 2.0, 5.0, 3.0)`

// Newest is how many of the newest matching tickets a search ranks: bm25
// scores each candidate, so a word found in every ticket would otherwise
// cost a score for each of them. Beyond it the list says the results are
// the newest Newest matches.
const Newest = 1000

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
	match, not := pq.Exprs()
	if not != "" {
		m.Where = append(m.Where, "t.id NOT IN (SELECT rowid FROM search_fts WHERE search_fts MATCH ?)")
		m.Args = append(m.Args, not)
	}
	if match != "" {
		m.From, m.Cond, m.CondArgs, m.Rank, m.Newest = "search_fts f JOIN tickets t ON t.id = f.rowid", "f.search_fts MATCH ?", []any{match}, rankSQL, Newest
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

// Exprs are the FTS5 queries of a search: match, the words to find with
// the excluded ones left out (a NOT b), and, when there are only excluded
// words, not: those to leave out. Either may be "".
func (q Query) Exprs() (match, not string) {
	var alts []string
	for _, t := range q.Not {
		alts = append(alts, ftsTerm(Term{Text: t.Text, Phrase: true}))
	}
	match = q.Match()
	switch {
	case len(alts) == 0:
	case match == "":
		not = strings.Join(alts, " OR ")
	default:
		match = "(" + match + ") NOT (" + strings.Join(alts, " OR ") + ")"
	}
	return match, not
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
// the search are found (its body, else a comment, else its labels), with
// the words marked. It reads the texts and finds the words in Go (as the
// index would: ignoring case, each word a prefix), rather than asking
// FTS5's snippet(), which would match the whole search again.
func (Searcher) Snippets(ctx context.Context, q events.Querier, f tickets.Filter, rows []tickets.Row) error {
	if f.Match == nil || f.Match.Cond == "" || len(rows) == 0 {
		return nil
	}
	pq, err := Parse(f.Q)
	if err != nil {
		return err
	}
	var terms []Term
	for _, g := range pq.Words {
		terms = append(terms, g...)
	}
	for i := range rows {
		r := &rows[i]
		var body, labels string
		if err := q.QueryRowContext(ctx, `SELECT body, labels FROM search_fts WHERE rowid = ?`, r.ID).Scan(&body, &labels); err != nil {
			return fmt.Errorf("snippet of %d: %w", r.ID, err)
		}
		if s := snippet(terms, body); s != "" {
			r.Snippet, r.SnippetIn = markHTML(s), "body"
			continue
		}
		by, s, err := commentSnippet(ctx, q, r.ID, terms)
		if err != nil {
			return err
		}
		if s != "" {
			r.Snippet, r.SnippetIn, r.SnippetBy = markHTML(s), "comment", by
			continue
		}
		if s := snippet(terms, labels); s != "" {
			r.Snippet, r.SnippetIn = markHTML(s), "labels"
		}
	}
	return nil
}

// commentSnippet finds the first of the ticket's comments holding a term:
// its author and its snippet.
func commentSnippet(ctx context.Context, q events.Querier, ticket int64, terms []Term) (string, string, error) {
	rows, err := q.QueryContext(ctx, `SELECT author, body FROM search_comments WHERE ticket_id = ? ORDER BY id`, ticket)
	if err != nil {
		return "", "", err
	}
	defer rows.Close()
	for rows.Next() {
		var author, body string
		if err := rows.Scan(&author, &body); err != nil {
			return "", "", err
		}
		if s := snippet(terms, body); s != "" {
			return author, s, nil
		}
	}
	return "", "", rows.Err()
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

// word is a run of letters, digits and marks in a text, by byte offsets.
type word struct{ start, end int }

// words splits text as the unicode61 tokenizer does, roughly: runs of
// letters, digits, marks and private-use characters.
func words(text string) []word {
	var out []word
	start := -1
	for i, r := range text {
		in := unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) || unicode.Is(unicode.Co, r)
		switch {
		case in && start < 0:
			start = i
		case !in && start >= 0:
			out = append(out, word{start, i})
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, word{start, len(text)})
	}
	return out
}

// fold is a word as the index compares it: lowercase, without diacritics
// on Latin letters (é → e).
func fold(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(strings.ToLower(s)) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// find returns the byte range of the first place a term is in text: a CJK
// run anywhere, a phrase's words in a row (the last one whole), a word as
// the start of a word. ok is false if it is not there.
func find(t Term, text string) (start, end int, ok bool) {
	for _, run := range cjkRuns(t.Text) {
		if i := strings.Index(text, run); i >= 0 {
			return i, i + len(run), true
		}
	}
	rest := t.Text
	for _, run := range cjkRuns(t.Text) {
		rest = strings.Replace(rest, run, " ", 1)
	}
	var want []string
	for _, w := range words(rest) {
		want = append(want, fold(rest[w.start:w.end]))
	}
	if len(want) == 0 {
		return 0, 0, false
	}
	ws := words(text)
	for i := 0; i+len(want) <= len(ws); i++ {
		match := true
		for j, w := range want {
			got := fold(text[ws[i+j].start:ws[i+j].end])
			last := j == len(want)-1
			if got != w && !(last && !t.Phrase && strings.HasPrefix(got, w)) {
				match = false
				break
			}
		}
		if match {
			return ws[i].start, ws[i+len(want)-1].end, true
		}
	}
	return 0, 0, false
}

// snippet is the text around the first term found in it, with every found
// term in the window between the sentinels; "" if none is there.
func snippet(terms []Term, text string) string {
	first, firstEnd := -1, 0
	for _, t := range terms {
		if s, e, ok := find(t, text); ok && (first < 0 || s < first) {
			first, firstEnd = s, e
		}
	}
	if first < 0 {
		return ""
	}
	const before, after = 60, 160 // characters
	from, lead := first, ""
	for n := 0; from > 0 && n < before; n++ {
		_, size := utf8.DecodeLastRuneInString(text[:from])
		from -= size
	}
	if from > 0 {
		lead = "…"
	}
	to, tail := firstEnd, ""
	for n := 0; to < len(text) && n < after; n++ {
		_, size := utf8.DecodeRuneInString(text[to:])
		to += size
	}
	if to < len(text) {
		tail = "…"
	}
	window := text[from:to]
	// Mark every term in the window, left to right.
	var b strings.Builder
	b.WriteString(lead)
	for window != "" {
		s, e := -1, 0
		for _, t := range terms {
			if ts, te, ok := find(t, window); ok && (s < 0 || ts < s) {
				s, e = ts, te
			}
		}
		if s < 0 {
			b.WriteString(window)
			break
		}
		b.WriteString(window[:s] + open + window[s:e] + shut)
		window = window[e:]
	}
	b.WriteString(tail)
	return strings.Join(strings.Fields(b.String()), " ")
}
