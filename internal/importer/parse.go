// Package importer loads issues and comments exported from another
// tracker's REST API (GitHub, Gitea) into the log: authors and assignees
// become imported people (person_imported), who cannot sign in and whom a
// real person may later claim (person_claimed); issues become tickets
// whose ticket_opened keeps the original number, address and times.
// docs/import.md describes the file and the rules.
package importer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"braid/internal/errs"
)

// Sources are the trackers an export may come from.
var Sources = map[string]string{"github": "GitHub", "gitea": "Gitea"}

// MaxFile is the largest export read, in bytes.
const MaxFile = 200 << 20

// User is an account as both APIs name it (GitHub's and Gitea's user
// objects share login and id).
type User struct {
	Login string `json:"login"`
	ID    int64  `json:"id"`
}

// Label is a label: an object with a name (both APIs), or a bare string
// (GitHub's schema allows either).
type Label struct{ Name string }

// UnmarshalJSON accepts {"name": …} or "…".
func (l *Label) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &l.Name)
	}
	var o struct {
		Name string `json:"name"`
	}
	err := json.Unmarshal(b, &o)
	l.Name = o.Name
	return err
}

// Issue is one element of GET /repos/{owner}/{repo}/issues.
type Issue struct {
	ID        int64   `json:"id"`
	Number    int64   `json:"number"`
	Title     string  `json:"title"`
	Body      *string `json:"body"`
	State     string  `json:"state"`
	HTMLURL   string  `json:"html_url"`
	User      *User   `json:"user"`
	Labels    []Label `json:"labels"`
	Assignee  *User   `json:"assignee"`
	Assignees []User  `json:"assignees"`
	CreatedAt string  `json:"created_at"`
	ClosedAt  *string `json:"closed_at"`
	// PullRequest is present (and not null) on pull requests, which the
	// issues endpoint lists too: they are skipped.
	PullRequest json.RawMessage `json:"pull_request"`
	// Gitea: the author on the tracker it was migrated from, if any.
	OriginalAuthor   string `json:"original_author"`
	OriginalAuthorID int64  `json:"original_author_id"`
}

// Comment is one element of GET /repos/{owner}/{repo}/issues/comments.
type Comment struct {
	ID               int64   `json:"id"`
	HTMLURL          string  `json:"html_url"`
	IssueURL         string  `json:"issue_url"`
	User             *User   `json:"user"`
	Body             *string `json:"body"`
	CreatedAt        string  `json:"created_at"`
	OriginalAuthor   string  `json:"original_author"`
	OriginalAuthorID int64   `json:"original_author_id"`
}

// Export is a parsed file: the issues (pull requests left out) and their
// comments, each issue's in the order they were written.
type Export struct {
	Source string // github or gitea
	Repo   string // the repository's address, https://host/owner/repo
	Issues []Issue
	// Comments by issue number, oldest first.
	Comments map[int64][]Comment
	// Skipped says what was left out and why, one line each.
	Skipped []string
}

// Parse reads an export of source (github or gitea): a JSON object
// {"issues": [...], "comments": [...]} or a bare issues array. Anything
// malformed refuses the whole file with an invalid error.
func Parse(r io.Reader, source string) (*Export, error) {
	if _, ok := Sources[source]; !ok {
		return nil, errs.E(errs.Invalid, "unknown source %q: use github or gitea", source)
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxFile+1))
	if err != nil {
		return nil, fmt.Errorf("read export: %w", err)
	}
	if len(b) > MaxFile {
		return nil, errs.E(errs.Invalid, "the file is larger than %d MB", MaxFile>>20)
	}
	var f struct {
		Issues   *[]Issue  `json:"issues"`
		Comments []Comment `json:"comments"`
	}
	t := bytes.TrimLeft(b, " \t\r\n")
	switch {
	case len(t) > 0 && t[0] == '[':
		var is []Issue
		if err := json.Unmarshal(t, &is); err != nil {
			return nil, badJSON(err)
		}
		f.Issues = &is
	case len(t) > 0 && t[0] == '{':
		if err := json.Unmarshal(t, &f); err != nil {
			return nil, badJSON(err)
		}
		if f.Issues == nil {
			return nil, errs.E(errs.Invalid, `the object has no "issues" array`)
		}
	default:
		return nil, errs.E(errs.Invalid, `not JSON: want an issues array or {"issues": [...], "comments": [...]}`)
	}
	x := &Export{Source: source, Comments: map[int64][]Comment{}}
	seen := map[int64]bool{}
	for i, is := range *f.Issues {
		if is.Number <= 0 {
			return nil, errs.E(errs.Invalid, "issue %d has no number", i+1)
		}
		if seen[is.Number] {
			return nil, errs.E(errs.Invalid, "issue #%d appears twice", is.Number)
		}
		seen[is.Number] = true
		if len(is.PullRequest) > 0 && string(is.PullRequest) != "null" {
			x.Skipped = append(x.Skipped, fmt.Sprintf("#%d is a pull request", is.Number))
			continue
		}
		if login, _ := is.author(); login == "" {
			return nil, errs.E(errs.Invalid, "issue #%d has no user", is.Number)
		}
		if _, err := parseTime(is.CreatedAt); err != nil {
			return nil, errs.E(errs.Invalid, "issue #%d: created_at %q is not a time", is.Number, is.CreatedAt)
		}
		if is.State != "open" && is.State != "closed" {
			return nil, errs.E(errs.Invalid, "issue #%d: state %q is neither open nor closed", is.Number, is.State)
		}
		repo, err := repoOf(is.HTMLURL, "/issues/")
		if err != nil {
			return nil, errs.E(errs.Invalid, "issue #%d: html_url %q is not an issue's address", is.Number, is.HTMLURL)
		}
		if x.Repo == "" {
			x.Repo = repo
		} else if repo != x.Repo {
			return nil, errs.E(errs.Invalid, "issue #%d is from %s, not %s: import one repository at a time", is.Number, repo, x.Repo)
		}
		x.Issues = append(x.Issues, is)
	}
	have := map[int64]bool{}
	for _, is := range x.Issues {
		have[is.Number] = true
	}
	cseen := map[int64]bool{}
	for i, c := range f.Comments {
		n, err := issueNumber(c.IssueURL)
		if err != nil || c.ID <= 0 {
			return nil, errs.E(errs.Invalid, "comment %d: want an id and an issue_url ending in /issues/NUMBER", i+1)
		}
		if cseen[c.ID] {
			return nil, errs.E(errs.Invalid, "comment %d appears twice", c.ID)
		}
		cseen[c.ID] = true
		if login, _ := c.author(); login == "" {
			return nil, errs.E(errs.Invalid, "comment %d has no user", c.ID)
		}
		if _, err := parseTime(c.CreatedAt); err != nil {
			return nil, errs.E(errs.Invalid, "comment %d: created_at %q is not a time", c.ID, c.CreatedAt)
		}
		if !have[n] {
			x.Skipped = append(x.Skipped, fmt.Sprintf("comment %d is on #%d, which is not an imported issue", c.ID, n))
			continue
		}
		x.Comments[n] = append(x.Comments[n], c)
	}
	for _, cs := range x.Comments {
		slices.SortStableFunc(cs, func(a, b Comment) int {
			ta, _ := parseTime(a.CreatedAt)
			tb, _ := parseTime(b.CreatedAt)
			if c := ta.Compare(tb); c != 0 {
				return c
			}
			return int(a.ID - b.ID)
		})
	}
	// Oldest issue first, so tickets are numbered in the original order.
	slices.SortStableFunc(x.Issues, func(a, b Issue) int { return int(a.Number - b.Number) })
	return x, nil
}

func badJSON(err error) error {
	return errs.E(errs.Invalid, "not valid JSON: %s", err.Error())
}

func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339, s) }

// repoOf is the repository part of an issue's or comment's address
// (https://host/owner/repo/issues/12 → https://host/owner/repo).
func repoOf(u, sep string) (string, error) {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return "", fmt.Errorf("not an address")
	}
	before, _, ok := strings.Cut(p.Path, sep)
	if !ok || strings.Count(strings.Trim(before, "/"), "/") < 1 {
		return "", fmt.Errorf("not an issue's address")
	}
	return p.Scheme + "://" + p.Host + before, nil
}

// issueNumber is the number at the end of a comment's issue_url: GitHub's
// API address (…/repos/o/r/issues/12) or Gitea's page (…/o/r/issues/12).
func issueNumber(u string) (int64, error) {
	i := strings.LastIndex(u, "/issues/")
	if i < 0 {
		return 0, fmt.Errorf("no /issues/")
	}
	n, err := strconv.ParseInt(u[i+len("/issues/"):], 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("no number")
	}
	return n, nil
}

// author is who wrote the issue: Gitea's original_author for an issue it
// migrated from elsewhere, else the user.
func (is Issue) author() (login string, id string) {
	return who(is.User, is.OriginalAuthor, is.OriginalAuthorID)
}

func (c Comment) author() (login string, id string) {
	return who(c.User, c.OriginalAuthor, c.OriginalAuthorID)
}

func who(u *User, orig string, origID int64) (string, string) {
	if orig != "" {
		if origID == 0 {
			return orig, "original:" + strings.ToLower(orig)
		}
		return orig, "original:" + strconv.FormatInt(origID, 10)
	}
	if u == nil {
		return "", ""
	}
	return u.Login, strconv.FormatInt(u.ID, 10)
}

func text(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
