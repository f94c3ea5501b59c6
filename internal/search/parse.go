package search

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"braid/internal/errs"
)

// Limits of what may be typed in the search box.
const (
	MaxChars = 1000 // characters
	MaxTerms = 40   // words, phrases and filters
)

// Term is a word or a "phrase" to find.
type Term struct {
	Text   string
	Phrase bool // quoted: the words in this order, the last one whole
}

// Query is what a person typed, parsed. Words holds groups that must all
// match; within a group any one term may (a OR b).
type Query struct {
	Words [][]Term
	Not   []Term // -word, -"phrase": tickets containing any are left out
	// Filters, as typed (names are resolved against the people table later).
	Author, Assignee string
	Labels           []string
	Status           string // "open", "closed" or "" (is:)
	NoAssignee       bool
	NoLabel          bool
}

// Filters the search box knows, for the message about one it does not.
const known = "author:, assignee:, label:, is:open, is:closed, no:assignee, no:label"

// isFilter reports whether k is a filter's name. A word ending in a colon
// that is not one ("TypeError:") is a word.
func isFilter(k string) bool {
	switch k {
	case "author", "assignee", "label", "is", "no":
		return true
	}
	return false
}

// Parse reads what a person typed in the search box. It never fails on
// words: every character may be searched for (an unbalanced quote runs to
// the end). It refuses text that is too long and filters it does not know,
// saying which (`unknown filter foo:`), rather than searching for them.
func Parse(s string) (Query, error) {
	var q Query
	if !utf8.ValidString(s) {
		return q, errs.Field("q", "The search is not valid UTF-8 text.")
	}
	if n := utf8.RuneCountInString(s); n > MaxChars {
		return q, errs.Field("q", "Keep the search to %d characters; it has %d.", MaxChars, n)
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	toks := lex(s)
	if len(toks) > MaxTerms {
		return q, errs.Field("q", "Search for at most %d words and filters; the search has %d.", MaxTerms, len(toks))
	}
	orNext := false
	for i, t := range toks {
		switch {
		case t.key != "":
			if err := q.filter(t.key, t.text); err != nil {
				return q, err
			}
		case t.or:
			// OR joins the terms on either side; alone at an end it is the word "or".
			if i > 0 && i+1 < len(toks) && len(q.Words) > 0 && toks[i+1].key == "" && !toks[i+1].not && !toks[i+1].or {
				orNext = true
				continue
			}
			q.Words = append(q.Words, []Term{{Text: "or"}})
		case t.not:
			if searchable(t.text) {
				q.Not = append(q.Not, Term{Text: t.text, Phrase: t.phrase})
			}
		default:
			if !searchable(t.text) {
				continue
			}
			term := Term{Text: t.text, Phrase: t.phrase}
			if orNext {
				q.Words[len(q.Words)-1] = append(q.Words[len(q.Words)-1], term)
			} else {
				q.Words = append(q.Words, []Term{term})
			}
		}
		orNext = false
	}
	return q, nil
}

func (q *Query) filter(key, val string) error {
	val = strings.TrimSpace(val)
	if val == "" {
		return errs.Field("q", "%s: needs a value, as in %s", key, example(key))
	}
	switch key {
	case "author", "assignee":
		p := &q.Author
		if key == "assignee" {
			p = &q.Assignee
		}
		if *p != "" && !strings.EqualFold(*p, val) {
			return errs.Field("q", "Give %s: once; the search has %s:%s and %s:%s.", key, key, *p, key, val)
		}
		*p = val
	case "label":
		q.Labels = append(q.Labels, strings.ToLower(val))
	case "is":
		v := strings.ToLower(val)
		if v != "open" && v != "closed" {
			return errs.Field("q", "is: is is:open or is:closed; not is:%s", val)
		}
		if q.Status != "" && q.Status != v {
			return errs.Field("q", "A ticket is either open or closed: use one of is:open and is:closed.")
		}
		q.Status = v
	case "no":
		switch strings.ToLower(val) {
		case "assignee":
			q.NoAssignee = true
		case "label":
			q.NoLabel = true
		default:
			return errs.Field("q", "no: is no:assignee or no:label; not no:%s", val)
		}
	default:
		return errs.Field("q", "unknown filter %s: (the search box knows %s; put the word in quotes to search for it)", key, known)
	}
	return nil
}

func example(key string) string {
	switch key {
	case "is":
		return "is:open"
	case "no":
		return "no:assignee"
	case "label":
		return `label:bug or label:"needs review"`
	}
	return key + ":ada"
}

// searchable reports whether s has something the index holds: a letter,
// a digit or a private-use character (what the unicode61 tokenizer keeps).
func searchable(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Co, r) {
			return true
		}
	}
	return false
}

type token struct {
	text   string
	key    string // a filter's name (text is its value)
	phrase bool
	not    bool
	or     bool
}

// lex splits the search into tokens: words, "phrases" (an unbalanced quote
// runs to the end), -negations, the operator OR and filters key:value or
// key:"value with spaces". A word with a colon is a filter only when what
// comes before the colon is letters; "http://…" stays a word.
func lex(s string) []token {
	var out []token
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			i += n
			continue
		}
		var t token
		if r == '-' && i+1 < len(s) && !isSpaceAt(s, i+1) {
			t.not = true
			i++
		}
		if s[i] == '"' {
			text, next := quoted(s, i)
			t.text, t.phrase, i = text, true, next
			out = append(out, t)
			continue
		}
		j := i
		for j < len(s) {
			r, n := utf8.DecodeRuneInString(s[j:])
			if unicode.IsSpace(r) {
				break
			}
			if r == ':' && !t.not && isKey(s[i:j]) && !strings.HasPrefix(s[j+1:], "//") &&
				(isFilter(strings.ToLower(s[i:j])) || j+1 < len(s) && !isSpaceAt(s, j+1)) {
				t.key = strings.ToLower(s[i:j])
				if j+1 < len(s) && s[j+1] == '"' {
					t.text, j = quoted(s, j+1)
				} else {
					k := j + 1
					for k < len(s) {
						r, n := utf8.DecodeRuneInString(s[k:])
						if unicode.IsSpace(r) {
							break
						}
						k += n
					}
					t.text, j = s[j+1:k], k
				}
				break
			}
			j += n
		}
		if t.key == "" {
			t.text = s[i:j]
			t.or = t.text == "OR" && !t.not
		}
		i = j
		out = append(out, t)
	}
	return out
}

func isSpaceAt(s string, i int) bool {
	r, _ := utf8.DecodeRuneInString(s[i:])
	return unicode.IsSpace(r)
}

// isKey reports whether s can be a filter's name: 1 to 20 ASCII letters.
func isKey(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// quoted reads the quoted text starting at s[i] == '"' up to the closing
// quote or the end, and returns it with the index after it.
func quoted(s string, i int) (string, int) {
	end := strings.IndexByte(s[i+1:], '"')
	if end < 0 {
		return s[i+1:], len(s)
	}
	return s[i+1 : i+1+end], i + 1 + end + 1
}
