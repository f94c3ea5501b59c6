package importer

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"braid/internal/input"
	"braid/internal/tickets"
)

// FuzzParse: any input is refused or gives an export whose every part
// the import can take: issues numbered once each from one repository,
// comments only on those issues, authors named, and the cleaned texts
// pass internal/input's rules within the ticket limits.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/github/export.json", "testdata/gitea/export.json", "testdata/github/issues-only.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, p[9:14] == "gitea")
	}
	f.Add([]byte(`[{"number":1,"title":"a\u0000b\r\nc","body":"\u0085x\r\ny","state":"open","created_at":"2024-01-01T00:00:00Z","html_url":"https://h/o/r/issues/1","user":{"login":"Ä b","id":1}}]`), false)
	f.Add([]byte(`{"issues":[],"comments":[{"id":1,"issue_url":"https://h/o/r/issues/1"}]}`), true)
	f.Fuzz(func(t *testing.T, in []byte, gitea bool) {
		src := "github"
		if gitea {
			src = "gitea"
		}
		x, err := Parse(bytes.NewReader(in), src)
		if err != nil {
			return
		}
		nums := map[int64]bool{}
		for _, is := range x.Issues {
			if is.Number <= 0 || nums[is.Number] {
				t.Fatalf("issue number %d accepted", is.Number)
			}
			nums[is.Number] = true
			if r, err := repoOf(is.HTMLURL, "/issues/"); err != nil || r != x.Repo {
				t.Fatalf("issue #%d from %q, export from %q", is.Number, r, x.Repo)
			}
			if l, id := is.author(); l == "" || id == "" {
				t.Fatalf("issue #%d has no author", is.Number)
			}
			title := cut(clean(is.Title, false), tickets.MaxTitle, "…")
			if err := input.Line("title", "The title", title, tickets.MaxTitle); err != nil {
				t.Fatalf("cleaned title %q refused: %v", title, err)
			}
			body := withNotes(clean(text(is.Body), true), tickets.MaxBody, is.HTMLURL, []string{"a note"})
			if err := input.Text("body", "The description", body, tickets.MaxBody); err != nil {
				t.Fatalf("cleaned body refused: %v", err)
			}
		}
		for n, cs := range x.Comments {
			if !nums[n] {
				t.Fatalf("comments on #%d, which is not imported", n)
			}
			for _, c := range cs {
				if l, _ := c.author(); l == "" {
					t.Fatalf("comment %d has no author", c.ID)
				}
			}
		}
	})
}

// An over-long body is cut to the limit with a line saying so and where
// the whole text is; the notes stay.
func TestWithNotesCutsOverLongBodies(t *testing.T) {
	long := strings.Repeat("é", tickets.MaxBody+500)
	got := withNotes(long, tickets.MaxBody, "https://github.com/o/r/issues/1", []string{"also assigned there: mona"})
	if n := utf8.RuneCountInString(got); n != tickets.MaxBody {
		t.Fatalf("cut to %d characters, want %d", n, tickets.MaxBody)
	}
	if !strings.Contains(got, "Cut by the import: the original has 20500 characters; the whole text is at https://github.com/o/r/issues/1") ||
		!strings.HasSuffix(got, "also assigned there: mona.") {
		t.Fatalf("the cut body ends %q", got[len(got)-300:])
	}
	if got := withNotes("short", 100, "u", nil); got != "short" {
		t.Fatalf("a short body changed: %q", got)
	}
	if got := clean("a\r\nb\x00c\td\u0085", true); got != "a\nb\uFFFDc\td\uFFFD" {
		t.Fatalf("clean: %q", got)
	}
	if got := clean("a\nb\tc", false); got != "a b c" {
		t.Fatalf("clean one line: %q", got)
	}
}
