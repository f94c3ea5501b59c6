package search

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"braid/internal/auth"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/markdown"
	"braid/internal/tickets"
)

// The ranking: bm25 with weights per column, so a word in the title counts
// most, then labels, the body, the CJK pieces, then comments.
const rankSQL = `bm25(search_fts, 10.0, 4.0, 2.0, 5.0, 3.0)`

// Newest is how many of the newest matching tickets a search ranks: bm25
// scores each candidate, so a word found in every ticket would otherwise
// cost a score for each of them. Beyond it the list says the results are
// the newest Newest matches.
const Newest = 1000

// commonAt is how many tickets a term may be found in and still be ranked
// by bm25. Before it scores a single row, FTS5's bm25 counts every row
// holding each term (its IDF), which costs ~20 ms for a word in every
// ticket of 100,000, and more for a phrase or a prefix; and the rarer a
// term, the more bm25 weighs it. So only terms found in fewer tickets are
// ranked by bm25; the common ones still choose the tickets, and among the
// equally ranked a common word in the title comes first, then the newest.
// A variable so tests can make a small site's words common.
var commonAt = 5000

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
	p, err := plan(ctx, q, pq)
	if err != nil {
		return err
	}
	if p.not != "" {
		m.Where = append(m.Where, "t.id NOT IN (SELECT rowid FROM search_fts WHERE search_fts MATCH ?)")
		m.Args = append(m.Args, p.not)
	}
	if p.match != "" {
		m.From, m.Cond, m.CondArgs, m.Order, m.Newest = "search_fts f JOIN tickets t ON t.id = f.rowid", "f.search_fts MATCH ?", []any{p.match}, p.order, Newest
	}
	f.Match = m
	return nil
}

// planned is how a search asks the index: match chooses the tickets (not,
// when there are only excluded words, leaves some out), rank (the terms
// found in fewer than commonAt tickets, any of them) orders them by bm25,
// and title (the common terms, in the title column) breaks ties.
type planned struct {
	match, not, rank, title string
}

// plan turns the parsed words into FTS5 queries, counting (up to
// commonAt) the tickets each term is found in. A word is a prefix, as
// people type, unless it is a single letter or a word of four letters or
// more found whole in at least commonAt tickets: then the word is whole,
// for a prefix of it would make FTS5 merge the lists of every word it
// starts (that of a word in every ticket is read end to end).
func plan(ctx context.Context, q events.Querier, pq Query) (planned, error) {
	var p planned
	var groups, rare, titles []string
	for _, g := range pq.Words {
		var alts []string
		for _, t := range g {
			prefix, rankPrefix, n, err := choose(ctx, q, t)
			if err != nil {
				return p, err
			}
			alts = append(alts, ftsTerm(t, wordCols, prefix))
			switch {
			case n == 0: // found only as a prefix: nothing to rank by
			case n < commonAt:
				rare = append(rare, ftsTerm(t, wordCols, rankPrefix))
			case searchable(cjkOut(t.Text)):
				titles = append(titles, ftsTerm(Term{Text: cjkOut(t.Text), Phrase: t.Phrase}, "{title}", rankPrefix))
			}
		}
		groups = append(groups, "("+strings.Join(alts, " OR ")+")")
	}
	var nots []string
	for _, t := range pq.Not {
		nots = append(nots, ftsTerm(Term{Text: t.Text, Phrase: true}, wordCols, false))
	}
	p.match = strings.Join(groups, " AND ")
	switch {
	case len(nots) == 0:
	case p.match == "":
		p.not = strings.Join(nots, " OR ")
	default:
		p.match = "(" + p.match + ") NOT (" + strings.Join(nots, " OR ") + ")"
	}
	p.rank, p.title = strings.Join(rare, " OR "), strings.Join(titles, " OR ")
	return p, nil
}

// choose says whether the word part of t is searched as a prefix, how it
// is ranked (rankPrefix: as a prefix too, else its words whole), and in
// about how many tickets (up to commonAt) it is found as ranked. A phrase
// is found in no more tickets than its rarest word, and counting its words
// (each a short read of the index) costs far less than matching it (which
// reads the positions of every word): a phrase of common words counts as
// common. A prefix of four letters or more is ranked as its word whole:
// counting it, or ranking by it, would merge the lists of every word it
// starts once more, as the search itself does.
func choose(ctx context.Context, q events.Querier, t Term) (prefix, rankPrefix bool, n int, err error) {
	rest := cjkOut(t.Text)
	ws := words(rest)
	if len(ws) == 0 { // CJK only
		n, err = count(ctx, q, ftsTerm(t, wordCols, false))
		return false, false, n, err
	}
	n = commonAt
	for _, w := range ws {
		c, err := count(ctx, q, ftsTerm(Term{Text: rest[w.start:w.end], Phrase: true}, wordCols, false))
		if err != nil {
			return false, false, 0, err
		}
		n = min(n, c)
	}
	if runs := cjkRuns(t.Text); len(runs) > 0 && n > 0 {
		c, err := count(ctx, q, ftsTerm(Term{Text: strings.Join(runs, " ")}, wordCols, false))
		if err != nil {
			return false, false, 0, err
		}
		n = min(n, c)
	}
	if t.Phrase {
		return false, false, n, nil
	}
	last := utf8.RuneCountInString(rest[ws[len(ws)-1].start:ws[len(ws)-1].end])
	switch {
	case last == 1:
		return false, false, n, nil
	case last <= 3:
		// The index keeps the prefixes of two and three letters
		// (prefix = '2 3'): counting one is a short read.
		c, err := count(ctx, q, ftsTerm(t, wordCols, true))
		return true, true, c, err
	}
	return n < commonAt, false, n, nil
}

// count is how many tickets the FTS5 query expr finds, up to commonAt.
func count(ctx context.Context, q events.Querier, expr string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM search_fts WHERE search_fts MATCH ? LIMIT ?)`, expr, commonAt).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", expr, err)
	}
	return n, nil
}

// order puts the candidate tickets ids (newest first) best first: by bm25
// over the rare terms, then a common term in the title, then the newest.
func (p planned) order(ctx context.Context, q events.Querier, ids []int64) ([]int64, error) {
	if len(ids) < 2 || (p.rank == "" && p.title == "") {
		return ids, nil
	}
	lo, hi := slices.Min(ids), slices.Max(ids)
	score, inTitle := map[int64]float64{}, map[int64]bool{}
	if p.rank != "" {
		// bm25 is computed for the rows the WHERE keeps: the window's rows
		// matching the rare terms, only the candidates among them (the
		// unary + keeps that test out of FTS5, which would start its
		// query, and count its IDF, again for each id).
		list, _ := json.Marshal(ids)
		rows, err := q.QueryContext(ctx, `SELECT rowid, `+rankSQL+` FROM search_fts WHERE search_fts MATCH ? AND rowid BETWEEN ? AND ?
			AND +rowid IN (SELECT value FROM json_each(?))`, p.rank, lo, hi, string(list))
		if err != nil {
			return nil, fmt.Errorf("rank: %w", err)
		}
		for rows.Next() {
			var id int64
			var s float64
			if err := rows.Scan(&id, &s); err != nil {
				rows.Close()
				return nil, err
			}
			score[id] = s
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	if p.title != "" {
		rows, err := q.QueryContext(ctx, `SELECT rowid FROM search_fts WHERE search_fts MATCH ? AND rowid BETWEEN ? AND ?`, p.title, lo, hi)
		if err != nil {
			return nil, fmt.Errorf("rank by titles: %w", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			inTitle[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	out := slices.Clone(ids)
	slices.SortStableFunc(out, func(a, b int64) int {
		if c := cmp.Compare(score[a], score[b]); c != 0 { // bm25: lower is better
			return c
		}
		if inTitle[a] != inTitle[b] {
			if inTitle[a] {
				return -1
			}
			return 1
		}
		return cmp.Compare(b, a)
	})
	return out, nil
}

// cjkOut is s with its CJK runs taken out (they are searched in the cjk
// column).
func cjkOut(s string) string {
	for _, run := range cjkRuns(s) {
		s = strings.Replace(s, run, " ", 1)
	}
	return s
}

// ftsTerm is one term as FTS5 query: every piece a quoted string with its
// quotes doubled, so no operator, column name, NEAR or star typed by a
// person is ever read as syntax. The words are looked for in cols, whole
// or (prefix) the last one as the start of a word; CJK runs in it are
// looked up by their pieces in the cjk column.
func ftsTerm(t Term, cols string, prefix bool) string {
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
		star := ""
		if prefix && !t.Phrase {
			star = "*"
		}
		parts = append(parts, cols+` : "`+strings.ReplaceAll(rest, `"`, `""`)+`"`+star)
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
		if s := cut(terms, body); s != "" {
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

// cut is the snippet of a body or a comment: from the text as a reader
// sees it (markdown.PlainText: no heading marks, stars, fences or table
// bars), or, when the words are only in what that leaves out (a link's
// address), from the text as typed. Only a text that holds the words is
// read as Markdown.
func cut(terms []Term, text string) string {
	s := snippet(terms, text)
	if s == "" {
		return ""
	}
	if p := snippet(terms, markdown.PlainText(text)); p != "" {
		return p
	}
	return s
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
		if s := cut(terms, body); s != "" {
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
