package importer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"braid/internal/access"
	"braid/internal/auth"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
	"braid/internal/tickets"
)

// PersonImported is the payload of person_imported: an account of
// another tracker, now a person here who cannot sign in.
type PersonImported struct {
	Source      string `json:"source"`    // github or gitea
	Host        string `json:"host"`      // the tracker's host, e.g. github.com
	Login       string `json:"login"`     // the login there
	SourceID    string `json:"source_id"` // the account's id there
	Username    string `json:"username"`  // the reserved username here, e.g. gh-octocat
	DisplayName string `json:"display_name"`
}

// PersonClaimed is the payload of person_claimed, on the imported
// person's aggregate: from then on pages name By for them.
type PersonClaimed struct {
	Imported string `json:"imported"`
	By       string `json:"by"`
}

// Types are the importer's event types.
type Types struct {
	Imported events.Type[PersonImported]
	Claimed  events.Type[PersonClaimed]
}

// Register adds the importer's event types to reg. It must follow
// auth.Register: imported people are rows of the users projection.
func Register(reg *events.Registry) Types {
	t := Types{
		Imported: events.Define[PersonImported](reg, "person_imported", 1),
		Claimed:  events.Define[PersonClaimed](reg, "person_claimed", 1),
	}
	users := reg.Projection("users")
	events.On(reg, users, t.Imported, func(ctx context.Context, q events.Querier, e *events.Event, d PersonImported) error {
		_, err := q.ExecContext(ctx, `INSERT INTO users (id, username, display_name, registered_at, imported_from) VALUES (?, ?, ?, ?, ?)`,
			e.AggregateID, d.Username, d.DisplayName, e.OccurredAt, d.Source)
		return err
	})
	events.On(reg, users, t.Claimed, func(ctx context.Context, q events.Querier, e *events.Event, d PersonClaimed) error {
		_, err := q.ExecContext(ctx, `UPDATE users SET claimed_by = ? WHERE id = ?`, d.By, e.AggregateID)
		return err
	})
	p := reg.NewProjection("imported_people", "imported_people")
	events.On(reg, p, t.Imported, func(ctx context.Context, q events.Querier, e *events.Event, d PersonImported) error {
		_, err := q.ExecContext(ctx, `INSERT INTO imported_people (source, host, source_id, login, person_id) VALUES (?, ?, ?, ?, ?)`,
			d.Source, d.Host, d.SourceID, d.Login, e.AggregateID)
		return err
	})
	return t
}

// Importer appends an export to the log.
type Importer struct {
	DB       *events.DB
	Writer   *events.Writer
	Registry *events.Registry
	Types    Types
	Tickets  tickets.Types
}

// Options are an import's choices.
type Options struct {
	Project string // the project's slug; "" is the default project
	Actor   string // who imports: the actor of person_imported, assignments and closes
}

// Report counts what an import appended (repeats of an earlier import
// are not counted) and says what it left out.
type Report struct {
	People, Tickets, Comments, Assigned, Closed int
	Notes                                       []string
}

// New is the number of things appended.
func (r Report) New() int { return r.People + r.Tickets + r.Comments + r.Assigned + r.Closed }

// commandID is the command id of one part of an import: derived from
// what is imported, so importing it again is a repeat the writer refuses.
func commandID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(append([]string{"braid-import"}, parts...), "\x00")))
	return hex.EncodeToString(h[:16])
}

// Run imports x. A part the rules refuse (say a title that is only
// control characters) is left out with a note; anything else stops the
// import, leaving what was appended (running it again resumes).
func (im *Importer) Run(ctx context.Context, x *Export, opt Options) (Report, error) {
	var rep Report
	rep.Notes = append(rep.Notes, x.Skipped...)
	if opt.Actor == "" {
		opt.Actor = auth.System
	}
	project := cmpOr(opt.Project, access.Default)
	var n int
	if err := im.DB.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM projects WHERE slug = ?`, project).Scan(&n); err != nil {
		return rep, fmt.Errorf("look up project: %w", err)
	}
	if n == 0 && project != access.Default {
		return rep, errs.E(errs.NotFound, "there is no project %q", project)
	}
	u, _ := url.Parse(x.Repo)
	host := u.Host
	people := map[string]string{}
	person := func(login, sourceID string) (string, error) {
		if id, ok := people[sourceID]; ok {
			return id, nil
		}
		id, isNew, err := im.person(ctx, x.Source, host, login, sourceID, opt.Actor)
		if err != nil {
			return "", err
		}
		if isNew {
			rep.People++
		}
		people[sourceID] = id
		return id, nil
	}
	for _, is := range x.Issues {
		login, sid := is.author()
		author, err := person(login, sid)
		if err != nil {
			return rep, err
		}
		var assignees []User
		for _, a := range append(slices.Clip(is.Assignees), derefUser(is.Assignee)...) {
			if a.Login != "" && !slices.ContainsFunc(assignees, func(b User) bool { return b.ID == a.ID }) {
				assignees = append(assignees, a)
			}
		}
		imp := &tickets.Imported{Source: x.Source, URL: is.HTMLURL, Number: is.Number, Login: login, CreatedAt: is.CreatedAt, ClosedAt: text(is.ClosedAt)}
		op := tickets.Opened{Title: clean(is.Title, false), Body: clean(text(is.Body), true), Imported: imp}
		if project != access.Default {
			op.Project = project
		}
		if strings.TrimSpace(op.Title) == "" {
			op.Title = fmt.Sprintf("(untitled #%d)", is.Number)
		}
		op.Title = cut(op.Title, tickets.MaxTitle, "…")
		var notes []string
		for _, l := range is.Labels {
			l := strings.ToLower(strings.TrimSpace(strings.ReplaceAll(clean(l.Name, false), ",", " ")))
			switch {
			case l == "" || slices.Contains(op.Labels, l):
			case len(op.Labels) == tickets.MaxLabels:
				notes = append(notes, "label not kept (at most 10): "+l)
			default:
				op.Labels = append(op.Labels, cut(l, tickets.MaxLabelSize, ""))
			}
		}
		if len(assignees) > 1 {
			var more []string
			for _, a := range assignees[1:] {
				more = append(more, a.Login)
			}
			notes = append(notes, "also assigned there: "+strings.Join(more, ", "))
		}
		op.Body = withNotes(op.Body, tickets.MaxBody, is.HTMLURL, notes)
		ticket, isNew, err := im.open(ctx, x, author, project, op)
		if errs.Code(err) == errs.Invalid {
			rep.Notes = append(rep.Notes, fmt.Sprintf("#%d left out: %s", is.Number, errMessage(err)))
			continue
		}
		if err != nil {
			return rep, fmt.Errorf("import #%d: %w", is.Number, err)
		}
		if isNew {
			rep.Tickets++
		}
		if len(assignees) > 0 {
			a, err := person(assignees[0].Login, strconv.FormatInt(assignees[0].ID, 10))
			if err != nil {
				return rep, err
			}
			isNew, err := im.onTicket(ctx, opt.Actor, commandID(x.Source, x.Repo, "assign", strconv.FormatInt(is.Number, 10)),
				events.Fingerprint("import_assign", x.Repo, strconv.FormatInt(is.Number, 10), a), ticket,
				func(t tickets.Ticket) ([]events.Pending, error) { return im.Tickets.Assign(t, a) })
			if err != nil {
				return rep, fmt.Errorf("assign #%d: %w", is.Number, err)
			}
			if isNew {
				rep.Assigned++
			}
		}
		for _, c := range x.Comments[is.Number] {
			login, sid := c.author()
			who, err := person(login, sid)
			if err != nil {
				return rep, err
			}
			body := clean(text(c.Body), true)
			if strings.TrimSpace(body) == "" {
				rep.Notes = append(rep.Notes, fmt.Sprintf("comment %d on #%d left out: it is empty", c.ID, is.Number))
				continue
			}
			body = withNotes(body, tickets.MaxComment, c.HTMLURL, nil)
			ci := &tickets.Imported{Source: x.Source, URL: c.HTMLURL, ID: c.ID, Login: login, CreatedAt: c.CreatedAt}
			cid := strconv.FormatInt(c.ID, 10)
			isNew, err := im.onTicket(ctx, who, commandID(x.Source, x.Repo, "comment", cid),
				events.Fingerprint("import_comment", x.Repo, cid), ticket,
				func(t tickets.Ticket) ([]events.Pending, error) {
					if err := input.Text("body", "A comment", body, tickets.MaxComment); err != nil {
						return nil, err
					}
					return []events.Pending{im.Tickets.CommentAdded.New(tickets.CommentAdded{CommentID: t.LastComment + 1, Body: body, Imported: ci})}, nil
				})
			if errs.Code(err) == errs.Invalid {
				rep.Notes = append(rep.Notes, fmt.Sprintf("comment %d on #%d left out: %s", c.ID, is.Number, errMessage(err)))
				continue
			}
			if err != nil {
				return rep, fmt.Errorf("comment %d on #%d: %w", c.ID, is.Number, err)
			}
			if isNew {
				rep.Comments++
			}
		}
		if is.State == "closed" {
			isNew, err := im.onTicket(ctx, opt.Actor, commandID(x.Source, x.Repo, "close", strconv.FormatInt(is.Number, 10)),
				events.Fingerprint("import_close", x.Repo, strconv.FormatInt(is.Number, 10)), ticket,
				func(t tickets.Ticket) ([]events.Pending, error) { return im.Tickets.Close(t) })
			if err != nil {
				return rep, fmt.Errorf("close #%d: %w", is.Number, err)
			}
			if isNew {
				rep.Closed++
			}
		}
	}
	return rep, nil
}

// person returns the person standing for an account of the tracker at
// host, importing them if they are new.
func (im *Importer) person(ctx context.Context, source, host, login, sourceID, actor string) (id string, isNew bool, err error) {
	d := PersonImported{Source: source, Host: host, Login: clean(login, false), SourceID: sourceID, DisplayName: cut(clean(login, false), 64, "")}
	res, err := im.Writer.Do(ctx, events.Command{
		ID: commandID(source, host, "person", sourceID), Actor: actor, Kind: "import",
		Fingerprint: events.Fingerprint("import_person", source, host, sourceID),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			err := tx.Q().QueryRowContext(ctx, `SELECT person_id FROM imported_people WHERE source = ? AND host = ? AND source_id = ?`,
				source, host, sourceID).Scan(&id)
			if err == nil {
				return nil, nil // imported before, under another command (say, by an older Braid)
			}
			if id, err = auth.NewPersonID(); err != nil {
				return nil, err
			}
			if d.Username, err = freeUsername(ctx, tx.Q(), source, d.Login); err != nil {
				return nil, err
			}
			if err := input.Line("display_name", "The display name", d.DisplayName, 64); err != nil {
				return nil, err
			}
			return []events.Change{{AggregateType: "user", AggregateID: id, Expect: 0, Events: []events.Pending{im.Types.Imported.New(d)}}}, nil
		},
	})
	if err != nil {
		return "", false, fmt.Errorf("import %s: %w", login, err)
	}
	if len(res.Events) > 0 {
		return res.Events[0].AggregateID, !res.Repeated, nil
	}
	return id, false, nil
}

// open opens the ticket for an issue, or finds the one an earlier import
// opened.
func (im *Importer) open(ctx context.Context, x *Export, author, project string, op tickets.Opened) (int64, bool, error) {
	num := strconv.FormatInt(op.Imported.Number, 10)
	res, err := im.Writer.Do(ctx, events.Command{
		ID: commandID(x.Source, x.Repo, "issue", num), Actor: author, Kind: "import",
		Fingerprint: events.Fingerprint("import_issue", x.Repo, num),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			d := tickets.Draft{Title: op.Title, Body: op.Body, Labels: op.Labels, Project: project}
			if err := d.Validate(); err != nil {
				return nil, err
			}
			var next int64
			if err := tx.Q().QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) + 1 FROM tickets`).Scan(&next); err != nil {
				return nil, fmt.Errorf("next ticket number: %w", err)
			}
			return []events.Change{{AggregateType: tickets.Aggregate, AggregateID: strconv.FormatInt(next, 10), Expect: 0,
				Events: []events.Pending{im.Tickets.Opened.New(op)}}}, nil
		},
	})
	if err != nil {
		return 0, false, err
	}
	id, _ := strconv.ParseInt(res.Events[0].AggregateID, 10, 64)
	return id, !res.Repeated, nil
}

// onTicket runs one command on ticket id; a repeat of an earlier
// import's is no error and reports false.
func (im *Importer) onTicket(ctx context.Context, actor, cmdID, fp string, id int64, decide func(tickets.Ticket) ([]events.Pending, error)) (bool, error) {
	sid := strconv.FormatInt(id, 10)
	res, err := im.Writer.Do(ctx, events.Command{ID: cmdID, Actor: actor, Kind: "import", Fingerprint: fp,
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			evs, err := tx.Load(ctx, tickets.Aggregate, sid, 0)
			if err != nil {
				return nil, err
			}
			t := im.Tickets.Fold(evs, im.Registry)
			p, err := decide(t)
			if err != nil || len(p) == 0 {
				return nil, err
			}
			return []events.Change{{AggregateType: tickets.Aggregate, AggregateID: sid, Expect: t.Version, Events: p}}, nil
		}})
	if err != nil {
		return false, err
	}
	return len(res.Events) > 0 && !res.Repeated, nil
}

// freeUsername is the username an imported account gets: the source's
// prefix and the login (gh-octocat), with -2, -3… if that is taken.
func freeUsername(ctx context.Context, q events.Querier, source, login string) (string, error) {
	prefix := map[string]string{"github": "gh-", "gitea": "gitea-"}[source]
	var b strings.Builder
	for _, r := range strings.ToLower(login) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	base := cut(prefix+b.String(), 32, "")
	for i := 1; i < 1000; i++ {
		name := base
		if i > 1 {
			sfx := "-" + strconv.Itoa(i)
			name = cut(base, 32-len(sfx), "") + sfx
		}
		var n int
		if err := q.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM users WHERE username = ?) + (SELECT COUNT(*) FROM former_usernames WHERE username = ?)`,
			name, name).Scan(&n); err != nil {
			return "", fmt.Errorf("look up username: %w", err)
		}
		if n == 0 {
			return name, nil
		}
	}
	return "", errs.E(errs.Conflict, "no free username for %s", login)
}

// clean makes text from another tracker fit Braid's rules (internal/input):
// valid UTF-8, CRLF as LF, other control characters as U+FFFD (on one line,
// line breaks and tabs as spaces).
func clean(s string, multiline bool) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			if multiline && r != '\r' {
				return r
			}
			if multiline {
				return '\n'
			}
			return ' '
		case input.Problem(string(r), false) != "":
			return '\uFFFD'
		}
		return r
	}, s)
}

// cut shortens s to max characters, ending it with tail if it was longer.
func cut(s string, max int, tail string) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-utf8.RuneCountInString(tail)]) + tail
}

// withNotes appends the import's notes to a body and, if it is then over
// max, cuts it with a line saying so and where the whole text is.
func withNotes(body string, max int, from string, notes []string) string {
	var tail string
	if len(notes) > 0 {
		tail = "\n\n---\n_Imported:_ " + strings.Join(notes, "; ") + "."
	}
	if utf8.RuneCountInString(body+tail) <= max {
		return body + tail
	}
	cutNote := fmt.Sprintf("\n\n---\n_Cut by the import: the original has %d characters; the whole text is at %s_", utf8.RuneCountInString(body), from)
	tail = cut(tail, max/4, "…")
	return cut(body, max-utf8.RuneCountInString(cutNote+tail), "") + cutNote + tail
}

func derefUser(u *User) []User {
	if u == nil {
		return nil
	}
	return []User{*u}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func errMessage(err error) string {
	m := errs.Message(err)
	for _, f := range errs.Fields(err) {
		m += " " + f
	}
	return m
}
