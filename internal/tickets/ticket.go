// Package tickets holds the ticket aggregate: its events, the pure fold
// and commands, the projections that materialise the read tables, the
// queries the pages use and the HTTP handlers.
package tickets

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
)

// Payloads, stored as JSON under stable snake_case type names.
type (
	Opened struct {
		Title  string   `json:"title"`
		Body   string   `json:"body"`
		Labels []string `json:"labels"`
		// Project is the project's slug; events from before projects have
		// none and belong to the default project (access.Default).
		Project string `json:"project,omitempty"`
		// Imported says where a ticket brought from another tracker came
		// from (internal/importer); nil for tickets opened here.
		Imported *Imported `json:"imported,omitempty"`
	}
	Edited struct {
		Title  string   `json:"title"`
		Body   string   `json:"body"`
		Labels []string `json:"labels"`
	}
	Assigned struct {
		Assignee string `json:"assignee"`
	}
	Unassigned struct {
		Previous string `json:"previous"`
	}
	Closed   struct{}
	Reopened struct{}

	CommentAdded struct {
		CommentID int64     `json:"comment_id"`
		Body      string    `json:"body"`
		Imported  *Imported `json:"imported,omitempty"`
	}
	CommentEdited struct {
		CommentID int64  `json:"comment_id"`
		Body      string `json:"body"`
	}
	CommentDeleted struct {
		CommentID int64 `json:"comment_id"`
	}
)

// Imported is the origin of a ticket or comment imported from another
// tracker: the event's own time is the import's, the original times are
// kept here.
type Imported struct {
	Source    string `json:"source"` // github or gitea
	URL       string `json:"url"`
	Number    int64  `json:"number,omitempty"` // the number there (tickets)
	ID        int64  `json:"id,omitempty"`     // the comment's id there (comments)
	Login     string `json:"login"`            // the author's login there
	CreatedAt string `json:"created_at"`
	ClosedAt  string `json:"closed_at,omitempty"`
}

// Types are the ticket event types; see Register.
type Types struct {
	Opened         events.Type[Opened]
	Edited         events.Type[Edited]
	Assigned       events.Type[Assigned]
	Unassigned     events.Type[Unassigned]
	Closed         events.Type[Closed]
	Reopened       events.Type[Reopened]
	CommentAdded   events.Type[CommentAdded]
	CommentEdited  events.Type[CommentEdited]
	CommentDeleted events.Type[CommentDeleted]
	// A person's saved views of the list (views.go).
	ViewSaved   events.Type[ViewSaved]
	ViewDeleted events.Type[ViewDeleted]
	// AttachmentAdded: a file attached to the ticket or one of its
	// comments (attachments.go).
	AttachmentAdded events.Type[AttachmentAdded]
}

// Aggregate is the aggregate type of tickets in the log.
const Aggregate = "ticket"

// Limits.
const (
	MaxTitle     = 200
	MaxBody      = 20000
	MaxComment   = 10000
	MaxLabels    = 10
	MaxLabelSize = 30
	MaxAssignee  = 64
)

// Comment is one comment as the fold knows it.
type Comment struct {
	ID        int64  `json:"id"`
	Author    string `json:"author"`
	Body      string `json:"body"`
	CreatedAt string `json:"created_at"`
	EditedAt  string `json:"edited_at,omitempty"`
	Deleted   bool   `json:"deleted,omitempty"`
	Position  int64  `json:"position"`
	// Erased says its text was erased (internal/erase): when, and by whom.
	Erased *Erasure `json:"erased,omitempty"`
	// Imported is where an imported comment came from.
	Imported *Imported `json:"imported,omitempty"`
}

// Erasure says when erased text was erased and in which role: "admin" (a
// site admin or the operator) or "author".
type Erasure struct {
	At     string `json:"at"`
	ByRole string `json:"by_role"`
}

// Sentence says it for a page: "Erased on 23 Nov 2026 by an admin" (or
// "by its author"); "" for nil.
func (e *Erasure) Sentence() string {
	if e == nil {
		return ""
	}
	day := e.At
	if t, err := time.Parse(time.RFC3339Nano, e.At); err == nil {
		day = t.UTC().Format("2 Jan 2006")
	}
	by := "an admin"
	if e.ByRole == "author" {
		by = "its author"
	}
	return "Erased on " + day + " by " + by
}

func newErasure(at, role string) *Erasure {
	if at == "" {
		return nil
	}
	return &Erasure{At: at, ByRole: role}
}

// Ticket is the state of one ticket: a fold of its own events.
type Ticket struct {
	ID        int64     `json:"id"`
	Project   string    `json:"project"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	Labels    []string  `json:"labels"`
	Status    string    `json:"status"`
	Assignee  string    `json:"assignee"`
	Author    string    `json:"author"`
	Version   int64     `json:"version"`
	Position  int64     `json:"position"` // log position of the last event folded
	OpenedAt  string    `json:"opened_at"`
	UpdatedAt string    `json:"updated_at"`
	Comments  []Comment `json:"comments"`
	// Erased says its title and description were erased (internal/erase).
	Erased *Erasure `json:"erased,omitempty"`
	// Imported is where an imported ticket came from (internal/importer).
	Imported *Imported `json:"imported,omitempty"`
	// Attachments are the files attached, in log order (attachments.go).
	Attachments []Attachment `json:"attachments,omitempty"`
	LastComment int64        `json:"-"`
	lastHash    [32]byte
}

// Apply folds one event into the state. It only changes state and cannot
// fail: events are facts, validated when they were decided.
func (t Types) Apply(s Ticket, e *events.Event, r *events.Registry) Ticket {
	s.Version, s.Position, s.UpdatedAt, s.lastHash = e.Version, e.Position, e.OccurredAt, e.Hash
	switch e.Type {
	case t.Opened.Name:
		d, _ := t.Opened.Decode(r, e)
		fmt.Sscan(e.AggregateID, &s.ID)
		s.Title, s.Body, s.Labels, s.Status, s.Author, s.OpenedAt = d.Title, d.Body, d.Labels, "open", e.Actor, e.OccurredAt
		s.Project = projectOf(d)
		s.Imported = d.Imported
	case t.Edited.Name:
		d, _ := t.Edited.Decode(r, e)
		s.Title, s.Body, s.Labels = d.Title, d.Body, d.Labels
	case t.Assigned.Name:
		d, _ := t.Assigned.Decode(r, e)
		s.Assignee = d.Assignee
	case t.Unassigned.Name:
		s.Assignee = ""
	case t.Closed.Name:
		s.Status = "closed"
	case t.Reopened.Name:
		s.Status = "open"
	case t.CommentAdded.Name:
		d, _ := t.CommentAdded.Decode(r, e)
		s.Comments = append(slices.Clip(s.Comments), Comment{ID: d.CommentID, Author: e.Actor, Body: d.Body, CreatedAt: e.OccurredAt, Position: e.Position, Imported: d.Imported})
		s.LastComment = max(s.LastComment, d.CommentID)
	case t.CommentEdited.Name:
		d, _ := t.CommentEdited.Decode(r, e)
		s.Comments = slices.Clone(s.Comments)
		if c := s.comment(d.CommentID); c != nil {
			c.Body, c.EditedAt = d.Body, e.OccurredAt
		}
	case t.CommentDeleted.Name:
		d, _ := t.CommentDeleted.Decode(r, e)
		s.Comments = slices.Clone(s.Comments)
		if c := s.comment(d.CommentID); c != nil {
			c.Deleted = true
		}
	case t.AttachmentAdded.Name:
		if e.ErasedBy != 0 {
			break // erased (internal/erase): its name and its file are gone
		}
		d, _ := t.AttachmentAdded.Decode(r, e)
		s.Attachments = append(slices.Clip(s.Attachments), attachmentOf(e, d))
	}
	return s
}

func (s *Ticket) comment(id int64) *Comment {
	for i := range s.Comments {
		if s.Comments[i].ID == id {
			return &s.Comments[i]
		}
	}
	return nil
}

// Comment returns a comment that has not been deleted.
func (s Ticket) Comment(id int64) (Comment, bool) {
	for _, c := range s.Comments {
		if c.ID == id && !c.Deleted {
			return c, true
		}
	}
	return Comment{}, false
}

// Fold folds events from the empty state.
func (t Types) Fold(evs []events.Event, r *events.Registry) Ticket {
	var s Ticket
	for i := range evs {
		s = t.Apply(s, &evs[i], r)
	}
	return s
}

// Draft is what the new-ticket and edit forms send.
type Draft struct {
	Title  string
	Body   string
	Labels []string
	// Project is the slug of the project a new ticket opens in; empty is
	// the default project. Edits ignore it.
	Project string
}

// projectOf is the project a ticket_opened names, the default one if none.
func projectOf(d Opened) string {
	if d.Project == "" {
		return access.Default
	}
	return d.Project
}

// ParseLabels splits a comma-separated list, trimming, lowercasing and
// dropping repeats.
func ParseLabels(s string) []string {
	out := []string{}
	for _, l := range strings.Split(s, ",") {
		l = strings.TrimSpace(l)
		if utf8.ValidString(l) { // ToLower would turn bad bytes into U+FFFD; Validate refuses them instead
			l = strings.ToLower(l)
		}
		if l != "" && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// Validate checks a draft against the limits, naming each field at fault.
func (d Draft) Validate() error {
	f := map[string]string{}
	if strings.TrimSpace(d.Title) == "" {
		f["title"] = "A ticket needs a title."
	} else if err := input.Line("title", "The title", d.Title, MaxTitle); err != nil {
		f["title"] = errs.Fields(err)["title"]
	}
	if err := input.Text("body", "The description", d.Body, MaxBody); err != nil {
		f["body"] = errs.Fields(err)["body"]
	}
	if len(d.Labels) > MaxLabels {
		f["labels"] = fmt.Sprintf("At most %d labels; there are %d.", MaxLabels, len(d.Labels))
	}
	seen := map[string]bool{}
	for _, l := range d.Labels {
		if err := input.Line("labels", "A label", l, 0); err != nil {
			f["labels"] = errs.Fields(err)["labels"]
			break
		}
		switch {
		case l == "" || utf8.RuneCountInString(l) > MaxLabelSize:
			f["labels"] = fmt.Sprintf("Each label is 1 to %d characters; %q is not.", MaxLabelSize, l)
		case strings.Contains(l, ","):
			f["labels"] = fmt.Sprintf("Labels are separated by commas, so %q cannot be one label.", l)
		case seen[l]:
			f["labels"] = fmt.Sprintf("The label %q is given twice.", l)
		}
		seen[l] = true
	}
	if len(f) > 0 {
		return &errs.Error{Code: errs.Invalid, Message: "Please fix the fields marked below.", Fields: f}
	}
	return nil
}

func validComment(body string) error {
	if strings.TrimSpace(body) == "" {
		return errs.Field("body", "A comment cannot be empty.")
	}
	return input.Text("body", "A comment", body, MaxComment)
}

// The commands: each checks the state and returns events or a domain error.

// Open opens a ticket.
func (t Types) Open(d Draft) ([]events.Pending, error) {
	d.Title = strings.TrimSpace(d.Title)
	if err := d.Validate(); err != nil {
		return nil, err
	}
	p := d.Project
	if p == access.Default {
		p = "" // as before projects: the default project is the one named by none
	}
	return []events.Pending{t.Opened.New(Opened{Title: d.Title, Body: d.Body, Labels: d.Labels, Project: p})}, nil
}

// Edit changes title, body and labels, if the ticket is still at version.
func (t Types) Edit(s Ticket, d Draft, version int64) ([]events.Pending, error) {
	d.Title = strings.TrimSpace(d.Title)
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if s.Version != version {
		return nil, errs.E(errs.Conflict, "Ticket #%d has changed since you opened the form (version %d, now %d). Their change is shown below; yours is kept in the form.", s.ID, version, s.Version)
	}
	if d.Title == s.Title && d.Body == s.Body && slices.Equal(d.Labels, s.Labels) {
		return nil, nil // nothing changed: nothing to append
	}
	return []events.Pending{t.Edited.New(Edited{Title: d.Title, Body: d.Body, Labels: d.Labels})}, nil
}

// Assign gives the ticket to a registered user; empty unassigns.
func (t Types) Assign(s Ticket, assignee string) ([]events.Pending, error) {
	if assignee == "" {
		if s.Assignee == "" {
			return nil, errs.Field("assignee", "Ticket #%d is not assigned to anyone.", s.ID)
		}
		return []events.Pending{t.Unassigned.New(Unassigned{Previous: s.Assignee})}, nil
	}
	if assignee == s.Assignee {
		return nil, errs.Field("assignee", "Ticket #%d is already assigned to %s.", s.ID, assignee)
	}
	return []events.Pending{t.Assigned.New(Assigned{Assignee: assignee})}, nil
}

// Close closes an open ticket.
func (t Types) Close(s Ticket) ([]events.Pending, error) {
	if s.Status == "closed" {
		return nil, errs.E(errs.Conflict, "Ticket #%d is already closed.", s.ID)
	}
	return []events.Pending{t.Closed.New(Closed{})}, nil
}

// Reopen reopens a closed ticket.
func (t Types) Reopen(s Ticket) ([]events.Pending, error) {
	if s.Status != "closed" {
		return nil, errs.E(errs.Conflict, "Ticket #%d is already open.", s.ID)
	}
	return []events.Pending{t.Reopened.New(Reopened{})}, nil
}

// AddComment adds a comment.
func (t Types) AddComment(s Ticket, body string) ([]events.Pending, error) {
	if err := validComment(body); err != nil {
		return nil, err
	}
	return []events.Pending{t.CommentAdded.New(CommentAdded{CommentID: s.LastComment + 1, Body: body})}, nil
}

// EditComment changes a comment; only its author may.
func (t Types) EditComment(s Ticket, actor string, id int64, body string) ([]events.Pending, error) {
	c, ok := s.Comment(id)
	if !ok {
		return nil, errs.E(errs.NotFound, "Ticket #%d has no comment %d.", s.ID, id)
	}
	if c.Author != actor {
		return nil, errs.E(errs.Forbidden, "Only the person who wrote comment %d may edit it.", id)
	}
	if err := validComment(body); err != nil {
		return nil, err
	}
	if body == c.Body {
		return nil, nil
	}
	return []events.Pending{t.CommentEdited.New(CommentEdited{CommentID: id, Body: body})}, nil
}

// DeleteComment removes a comment from the page; its events stay in the log.
func (t Types) DeleteComment(s Ticket, actor string, id int64) ([]events.Pending, error) {
	c, ok := s.Comment(id)
	if !ok {
		return nil, errs.E(errs.NotFound, "Ticket #%d has no comment %d.", s.ID, id)
	}
	if c.Author != actor {
		return nil, errs.E(errs.Forbidden, "Only the person who wrote comment %d may delete it.", id)
	}
	return []events.Pending{t.CommentDeleted.New(CommentDeleted{CommentID: id})}, nil
}

// Line says in plain words where an imported ticket came from: "imported
// from GitHub #12, opened 3 Mar 2024 by octocat"; "" for nil.
func (im *Imported) Line() string {
	if im == nil {
		return ""
	}
	src := map[string]string{"github": "GitHub", "gitea": "Gitea"}[im.Source]
	if src == "" {
		src = im.Source
	}
	when := im.CreatedAt
	if t, err := time.Parse(time.RFC3339, im.CreatedAt); err == nil {
		when = t.UTC().Format("2 Jan 2006")
	}
	return fmt.Sprintf("imported from %s #%d, opened %s by %s", src, im.Number, when, im.Login)
}

// Link is the imported ticket's address at its source, if it is a web
// address ("" otherwise, and for nil).
func (im *Imported) Link() string {
	if im == nil || !(strings.HasPrefix(im.URL, "https://") || strings.HasPrefix(im.URL, "http://")) {
		return ""
	}
	return im.URL
}
