// Package input is the one validation path for text that reaches the log:
// every field a person types is checked here, on the raw string, before a
// payload is encoded (encoding/json would silently turn invalid UTF-8 into
// U+FFFD, so afterwards it is too late to tell).
package input

import (
	"fmt"
	"unicode/utf8"

	"braid/internal/errs"
)

// Line checks one line of text: valid UTF-8, no control characters at all,
// at most max characters (runes). label names the field in the message,
// e.g. "The title".
func Line(field, label, s string, max int) error {
	return check(field, label, s, max, false)
}

// Text checks multi-line text: as Line, but newline and tab are allowed.
func Text(field, label, s string, max int) error {
	return check(field, label, s, max, true)
}

// Problem says what is wrong with s as text, or "" when nothing is: the
// part of the rules that needs no field name, for checks outside forms.
func Problem(s string, multiline bool) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8 text"
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if bad(r) {
			return fmt.Sprintf("contains the control character %U", r)
		}
	}
	return ""
}

// bad reports whether r is a control character: C0 (U+0000–U+001F),
// DEL (U+007F) or C1 (U+0080–U+009F).
func bad(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f)
}

func check(field, label, s string, max int, multiline bool) error {
	if !utf8.ValidString(s) {
		return errs.Field(field, "%s contains bytes that are not text (invalid UTF-8). Type it again or paste it as plain text.", label)
	}
	n := 0
	for _, r := range s {
		n++
		switch {
		case multiline && (r == '\n' || r == '\t'):
		case !multiline && (r == '\n' || r == '\r'):
			return errs.Field(field, "%s must be one line.", label)
		case bad(r):
			return errs.Field(field, "%s contains an invisible control character (%U); remove it.", label, r)
		}
	}
	if max > 0 && n > max {
		return errs.Field(field, "Keep %s to %d characters; it has %d.", lower(label), max, n)
	}
	return nil
}

// lower lowers the first letter of an ASCII label ("The title" → "the title").
func lower(label string) string {
	if label != "" && label[0] >= 'A' && label[0] <= 'Z' {
		return string(label[0]+'a'-'A') + label[1:]
	}
	return label
}
