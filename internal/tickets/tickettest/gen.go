// Package tickettest generates random, valid histories of ticket commands
// for property tests (replay, time travel, verify) in any package. It runs
// the real commands through the real services; nothing is mocked.
package tickettest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode/utf8"

	"braid/internal/access"
	"braid/internal/auth"
	"braid/internal/errs"
	"braid/internal/notify"
	"braid/internal/tickets"
)

// Password is the password of every user the generator registers.
const Password = "correct horse"

// Summary is what a run did.
type Summary struct {
	Users    []string       // ids of the people registered
	Tickets  int64          // tickets opened
	Commands int            // valid commands issued (registrations included)
	Invalid  int            // deliberately invalid commands issued, each refused
	Events   int64          // events appended by the run
	ByKind   map[string]int // commands issued per kind, valid and invalid
}

// Config tunes a run; zero values take defaults.
type Config struct {
	Users    int     // users to register first, default 4
	Commands int     // ticket commands after registration, default 1000
	Invalid  float64 // share of deliberately invalid commands, default 0.05
	// Notify, when set, mixes in watching, unwatching, @mentions, marking
	// read and setting a digest address (internal/notify).
	Notify *notify.Service
	// Projects, when set, mixes in projects (internal/access): creating
	// them, granting and revoking roles, tickets opened in them, and
	// commands refused to people without the role they need.
	Projects *access.Service
}

// gen is one run's state: the services, the random source and what the
// generator knows about the world (it reads tickets back with tickets.Get).
type gen struct {
	ctx     context.Context
	rng     *rand.Rand
	tix     *tickets.Service
	people  *auth.Service
	inbox   *notify.Service
	access  *access.Service
	slugs   []string          // projects the run created
	users   []string          // person ids
	names   map[string]string // id -> current username
	prefix  string
	renames int
	tickets int64
	sum     Summary
}

// Run registers cfg.Users users and then issues cfg.Commands random ticket
// commands, each valid in the state it is issued in, with a share of
// deliberately invalid ones mixed in. Every valid command must succeed and
// append what it should; every invalid one must fail with a domain error and
// append nothing. The first surprise ends the run with an error that names
// the command, so a failing seed can be replayed.
//
// Runs are deterministic for a seed given the same starting database. The
// services must not be used by anyone else meanwhile: appended events are
// counted from the writer's head.
func Run(ctx context.Context, rng *rand.Rand, tix *tickets.Service, people *auth.Service, cfg Config) (Summary, error) {
	if cfg.Users <= 0 {
		cfg.Users = 4
	}
	if cfg.Commands <= 0 {
		cfg.Commands = 1000
	}
	if cfg.Invalid == 0 {
		cfg.Invalid = 0.05
	}
	g := &gen{ctx: ctx, rng: rng, tix: tix, people: people, inbox: cfg.Notify, access: cfg.Projects, sum: Summary{ByKind: map[string]int{}},
		names: map[string]string{}}
	start := g.head()
	var before int64
	done := func(err error) (Summary, error) {
		g.sum.Events = g.head() - start
		g.sum.Tickets = g.tickets - before
		return g.sum, err
	}

	if err := people.DB.Read.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM tickets`).Scan(&g.tickets); err != nil {
		return done(fmt.Errorf("count tickets: %w", err))
	}
	before = g.tickets

	prefix := fmt.Sprintf("u%04x", rng.IntN(1<<16))
	g.prefix = prefix
	for i := range cfg.Users {
		u := fmt.Sprintf("%s_%d", prefix, i)
		want := int64(1)
		if g.head() == 0 {
			want = 2 // the first person on an empty log is made its admin too
		}
		var id string
		err := g.valid("sign_up", want, func() error {
			var err error
			id, _, err = people.SignUp(ctx, auth.Registration{Username: u, DisplayName: g.line(20), Password: Password, Confirmation: Password}, g.id())
			return err
		})
		if err != nil {
			return done(err)
		}
		g.users = append(g.users, id)
		g.names[id] = u
	}
	g.sum.Users = g.users

	for i := range cfg.Commands {
		var err error
		if rng.Float64() < cfg.Invalid && g.tickets > 0 {
			err = g.invalid()
		} else {
			err = g.step()
		}
		if err != nil {
			return done(fmt.Errorf("command %d: %w", i, err))
		}
	}
	return done(nil)
}

func (g *gen) id() string { return fmt.Sprintf("%016x%016x", g.rng.Uint64(), g.rng.Uint64()) }

func (g *gen) user() string { return g.users[g.rng.IntN(len(g.users))] }

func (g *gen) head() int64 { return g.tix.Writer.Head().Position }

// valid runs a command that must succeed and append exactly want events.
func (g *gen) valid(kind string, want int64, do func() error) error {
	g.sum.ByKind[kind]++
	before := g.head()
	if err := do(); err != nil {
		return fmt.Errorf("%s: valid command refused: %w", kind, err)
	}
	if got := g.head() - before; got != want {
		return fmt.Errorf("%s: appended %d events, want %d", kind, got, want)
	}
	g.sum.Commands++
	return nil
}

// refused runs a command that must fail with code and append nothing.
func (g *gen) refused(kind, code string, do func() error) error {
	g.sum.ByKind["invalid_"+kind]++
	before := g.head()
	err := do()
	if got := errs.Code(err); got != code {
		return fmt.Errorf("invalid %s: got error %v (code %q), want code %q", kind, err, got, code)
	}
	if got := g.head() - before; got != 0 {
		return fmt.Errorf("invalid %s: appended %d events, want 0", kind, got)
	}
	g.sum.Invalid++
	return nil
}

// lastVisible is the highest comment number on the page (deleted ones
// are not there, so a number above it names no comment that may be changed).
func lastVisible(t tickets.Ticket) int64 {
	var n int64
	for _, c := range t.Comments {
		n = max(n, c.ID)
	}
	return n
}

// pick returns a random existing ticket as the read tables have it.
func (g *gen) pick() (tickets.Ticket, error) {
	id := 1 + g.rng.Int64N(g.tickets)
	t, err := tickets.Get(g.ctx, g.people.DB.Read, id)
	if err != nil {
		return t, fmt.Errorf("read ticket %d back: %w", id, err)
	}
	return t, nil
}

func (g *gen) open() error {
	d := g.draft()
	return g.valid("open", 1, func() error {
		id, err := g.tix.Open(g.ctx, g.user(), d, g.id())
		if err == nil {
			if id != g.tickets+1 {
				return fmt.Errorf("opened ticket #%d, want #%d", id, g.tickets+1)
			}
			g.tickets = id
		}
		return err
	})
}

// step issues one random command that is valid for the state it reads.
func (g *gen) step() error {
	if g.tickets == 0 || g.rng.IntN(100) < 8 {
		return g.open()
	}
	if g.access != nil && g.rng.IntN(100) < 8 {
		return g.projectStep()
	}
	t, err := g.pick()
	if err != nil {
		return err
	}
	ctx, actor := g.ctx, g.user()
	if t.Project != access.Default {
		// Commands on a project's tickets come from its members and up;
		// someone below gets a forbidden answer and appends nothing.
		in := g.holding(t.Project, access.Member)
		if !slices.Contains(in, actor) {
			if r, err := access.RoleIn(ctx, g.people.DB.Read, actor, t.Project); err == nil && r < access.Reporter && g.rng.IntN(4) == 0 {
				return g.refused("comment_without_role", errs.Forbidden, func() error {
					_, err := g.tix.Comment(ctx, actor, t.ID, g.comment(), g.id())
					return err
				})
			}
			actor = in[g.rng.IntN(len(in))]
		}
	}
	mine := func() []tickets.Comment {
		var out []tickets.Comment
		for _, c := range t.Comments {
			if c.Author == actor {
				out = append(out, c)
			}
		}
		return out
	}
	if g.inbox != nil && g.rng.IntN(100) < 15 {
		return g.notifyStep(t, actor)
	}
	if g.rng.IntN(100) < 2 && actor != access.System {
		return g.rename(actor)
	}
	switch r := g.rng.IntN(100); {
	case r < 12:
		d := g.draft()
		if g.rng.IntN(4) == 0 {
			d.Title = t.Title // an edit of the body or labels alone
		}
		want := int64(1)
		if strings.TrimSpace(d.Title) == t.Title && d.Body == t.Body && slices.Equal(d.Labels, t.Labels) {
			want = 0
		}
		return g.valid("edit", want, func() error { return g.tix.Edit(ctx, actor, t.ID, d, t.Version, g.id()) })
	case r < 22:
		to := g.user()
		if in := g.holding(t.Project, access.Viewer); !slices.Contains(in, to) {
			to = in[g.rng.IntN(len(in))]
			if to == access.System { // nobody may be assigned: a comment instead
				break
			}
		}
		if to == t.Assignee {
			if t.Assignee == "" {
				break
			}
			return g.valid("unassign", 1, func() error { return g.tix.Assign(ctx, actor, t.ID, "", g.id()) })
		}
		return g.valid("assign", 1, func() error { return g.tix.Assign(ctx, actor, t.ID, to, g.id()) })
	case r < 26:
		if t.Assignee != "" {
			return g.valid("unassign", 1, func() error { return g.tix.Assign(ctx, actor, t.ID, "", g.id()) })
		}
	case r < 36:
		if t.Status == "open" {
			return g.valid("close", 1, func() error { return g.tix.Close(ctx, actor, t.ID, g.id()) })
		}
		return g.valid("reopen", 1, func() error { return g.tix.Reopen(ctx, actor, t.ID, g.id()) })
	case r < 50:
		if cs := mine(); len(cs) > 0 {
			c := cs[g.rng.IntN(len(cs))]
			body := g.comment()
			want := int64(1)
			if body == c.Body {
				want = 0
			}
			return g.valid("edit_comment", want, func() error { return g.tix.EditComment(ctx, actor, t.ID, c.ID, body, g.id()) })
		}
	case r < 56:
		if cs := mine(); len(cs) > 0 {
			c := cs[g.rng.IntN(len(cs))]
			return g.valid("delete_comment", 1, func() error { return g.tix.DeleteComment(ctx, actor, t.ID, c.ID, g.id()) })
		}
	case r < 60:
		// The same command_id posted twice acts once.
		body, id := g.comment(), g.id()
		return g.valid("comment_twice", 1, func() error {
			if _, err := g.tix.Comment(ctx, actor, t.ID, body, id); err != nil {
				return err
			}
			_, err := g.tix.Comment(ctx, actor, t.ID, body, id)
			return err
		})
	}
	body := g.comment()
	return g.valid("comment", 1, func() error {
		cid, err := g.tix.Comment(ctx, actor, t.ID, body, g.id())
		if err == nil && cid <= lastVisible(t) {
			return fmt.Errorf("comment got number %d, not above %d", cid, lastVisible(t))
		}
		return err
	})
}

// rename gives the person a new username (username_changed), now and then
// taking back their previous one.
func (g *gen) rename(id string) error {
	g.renames++
	name := fmt.Sprintf("%s_r%d", g.prefix, g.renames)
	if g.rng.IntN(4) == 0 {
		var before string
		if err := g.people.DB.Read.QueryRowContext(g.ctx, `SELECT username FROM former_usernames WHERE user_id = ? ORDER BY changed_at DESC LIMIT 1`, id).Scan(&before); err == nil {
			name = before
		}
	}
	err := g.valid("rename", 1, func() error { return g.people.ChangeUsername(g.ctx, id, id, name, Password, g.id()) })
	if err == nil {
		g.names[id] = name
	}
	return err
}

// invalid issues one command that the domain must refuse.
func (g *gen) invalid() error {
	t, err := g.pick()
	if err != nil {
		return err
	}
	ctx, actor := g.ctx, g.user()
	if in := g.holding(t.Project, access.Member); !slices.Contains(in, actor) {
		actor = in[g.rng.IntN(len(in))] // refused for what the command is, not for a missing role
	}
	switch g.rng.IntN(10) {
	case 0:
		if t.Version > 1 {
			return g.refused("stale_edit", errs.Conflict, func() error {
				return g.tix.Edit(ctx, actor, t.ID, g.draft(), t.Version-1, g.id())
			})
		}
		fallthrough
	case 1:
		if t.Status == "closed" {
			return g.refused("close_closed", errs.Conflict, func() error { return g.tix.Close(ctx, actor, t.ID, g.id()) })
		}
		return g.refused("reopen_open", errs.Conflict, func() error { return g.tix.Reopen(ctx, actor, t.ID, g.id()) })
	case 2:
		if t.Assignee != "" {
			return g.refused("assign_again", errs.Invalid, func() error { return g.tix.Assign(ctx, actor, t.ID, t.Assignee, g.id()) })
		}
		return g.refused("unassign_nobody", errs.Invalid, func() error { return g.tix.Assign(ctx, actor, t.ID, "", g.id()) })
	case 3:
		return g.refused("assign_stranger", errs.Invalid, func() error { return g.tix.Assign(ctx, actor, t.ID, "nobody-"+g.line(5), g.id()) })
	case 4:
		for _, c := range t.Comments {
			if c.Author != actor {
				if g.rng.IntN(2) == 0 {
					return g.refused("edit_others_comment", errs.Forbidden, func() error {
						return g.tix.EditComment(ctx, actor, t.ID, c.ID, g.comment(), g.id())
					})
				}
				return g.refused("delete_others_comment", errs.Forbidden, func() error {
					return g.tix.DeleteComment(ctx, actor, t.ID, c.ID, g.id())
				})
			}
		}
		fallthrough
	case 5:
		return g.refused("empty_comment", errs.Invalid, func() error {
			_, err := g.tix.Comment(ctx, actor, t.ID, " \n\t ", g.id())
			return err
		})
	case 6:
		return g.refused("long_comment", errs.Invalid, func() error {
			_, err := g.tix.Comment(ctx, actor, t.ID, strings.Repeat("é", tickets.MaxComment+1), g.id())
			return err
		})
	case 7:
		d := g.draft()
		d.Title = strings.Repeat("ü", tickets.MaxTitle+1)
		return g.refused("long_title", errs.Invalid, func() error { return g.tix.Edit(ctx, actor, t.ID, d, t.Version, g.id()) })
	case 8:
		if other := g.user(); other != actor && actor != access.System && g.rng.IntN(2) == 0 {
			// Someone else's username, current or former, is never free.
			return g.refused("rename_taken", errs.Invalid, func() error {
				return g.people.ChangeUsername(ctx, actor, actor, g.names[other], Password, g.id())
			})
		}
		return g.refused("comment_unknown_ticket", errs.NotFound, func() error {
			_, err := g.tix.Comment(ctx, actor, g.tickets+1+g.rng.Int64N(100), g.comment(), g.id())
			return err
		})
	default:
		return g.refused("missing_comment", errs.NotFound, func() error {
			return g.tix.DeleteComment(ctx, actor, t.ID, lastVisible(t)+1+g.rng.Int64N(5), g.id())
		})
	}
}

// Pieces of text that have broken trackers before: markup, FTS5 syntax,
// quotes, right-to-left and combining characters, astral-plane emoji.
var pieces = []string{
	"login", "fails", "crash", "on", "Safari", "the", "export", "button",
	"<script>alert('x')</script>", "<b>bold</b>", "&amp;", "&lt;", "\"quoted\"", "it's",
	`"AND`, "OR", "NOT", "NEAR(", "a*", "^start", "title:body", "-minus", "(paren", "{col}", "\\", "%", "_",
	"Ünïcødé", "日本語", "中文字", "עברית", "العربية", "e\u0301", "🐛", "🚀👩‍💻", "\u200b", "Straße", "İstanbul",
}

// line returns one line of up to n runes.
func (g *gen) line(n int) string {
	var b strings.Builder
	for k := 1 + g.rng.IntN(8); k > 0; k-- {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(pieces[g.rng.IntN(len(pieces))])
	}
	s := []rune(b.String())
	if len(s) > n {
		s = s[:n]
	}
	return string(s)
}

// text returns some lines, sometimes with blank lines and trailing spaces.
func (g *gen) text(lines int) string {
	var b strings.Builder
	for k := g.rng.IntN(lines + 1); k > 0; k-- {
		b.WriteString(g.line(200))
		switch g.rng.IntN(5) {
		case 0:
			b.WriteString("\n\n")
		case 1:
			b.WriteString("  \n")
		default:
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func (g *gen) title() string {
	switch g.rng.IntN(40) {
	case 0: // exactly at the limit, counted in runes
		return strings.Repeat("é", tickets.MaxTitle)
	case 1: // surrounding space is trimmed, not refused
		return "  " + g.line(50) + " "
	}
	t := strings.TrimSpace(g.line(120))
	if t == "" {
		t = "untitled"
	}
	return t
}

func (g *gen) draft() tickets.Draft {
	body := g.text(6)
	if g.rng.IntN(200) == 0 {
		body = strings.Repeat("ß", tickets.MaxBody) // at the limit
	}
	var labels []string
	for k := g.rng.IntN(5); k > 0; k-- {
		labels = append(labels, []string{"bug", "UI", " ux ", "p1", "needs-info", "日本", "a,b", "bug", strings.Repeat("l", tickets.MaxLabelSize)}[g.rng.IntN(9)])
	}
	// Labels go through ParseLabels as the form's do.
	return tickets.Draft{Title: g.title(), Body: body, Labels: tickets.ParseLabels(strings.Join(labels, ","))}
}

func (g *gen) comment() string {
	if g.rng.IntN(300) == 0 {
		return strings.Repeat("ñ", tickets.MaxComment) // at the limit
	}
	c := g.text(4)
	if strings.TrimSpace(c) == "" {
		c = g.line(60) + "!"
	}
	return c
}

// notifyStep issues one notify command, valid in the state it reads.
func (g *gen) notifyStep(t tickets.Ticket, actor string) error {
	ctx, q := g.ctx, g.people.DB.Read
	switch g.rng.IntN(5) {
	case 0, 1:
		w, err := notify.Watching(ctx, q, t.ID, actor)
		if err != nil {
			return err
		}
		if g.rng.IntN(2) == 0 {
			return g.valid("watch", map[bool]int64{false: 1, true: 0}[w], func() error { return g.inbox.Watch(ctx, actor, t.ID, g.id()) })
		}
		return g.valid("unwatch", map[bool]int64{false: 0, true: 1}[w], func() error { return g.inbox.Unwatch(ctx, actor, t.ID, g.id()) })
	case 2:
		mention := "@" + g.names[g.user()] + " "
		body := mention + g.comment()
		if n := utf8.RuneCountInString(body); n > tickets.MaxComment {
			body = string([]rune(body)[:tickets.MaxComment]) // a comment at the limit, still a mention
		}
		return g.valid("mention", 1, func() error { _, err := g.tix.Comment(ctx, actor, t.ID, body, g.id()); return err })
	case 3:
		items, _, err := notify.Inbox(ctx, q, actor, 20, 0)
		if err != nil {
			return err
		}
		var unread []int64
		for _, it := range items {
			if !it.Read {
				unread = append(unread, it.Position)
			}
		}
		if len(unread) > 0 && g.rng.IntN(2) == 0 {
			p := unread[g.rng.IntN(len(unread))]
			return g.valid("read_one", 1, func() error { return g.inbox.MarkRead(ctx, actor, 0, []int64{p}, g.id()) })
		}
		n, err := notify.Unread(ctx, q, actor)
		if err != nil {
			return err
		}
		return g.valid("read_all", min(int64(n), 1), func() error { return g.inbox.MarkRead(ctx, actor, g.head(), nil, g.id()) })
	default:
		cur, err := notify.Email(ctx, q, actor)
		if err != nil {
			return err
		}
		email := []string{"", actor + "@example.org", actor + ".other@example.org"}[g.rng.IntN(3)]
		return g.valid("email", map[bool]int64{false: 1, true: 0}[cur == email], func() error { return g.inbox.SetEmail(ctx, actor, email, g.id()) })
	}
}

// holding lists the run's users (and, when none of them, the operator)
// whose role in project is at least min.
func (g *gen) holding(project string, min access.Role) []string {
	var out []string
	for _, u := range g.users {
		if r, err := access.RoleIn(g.ctx, g.people.DB.Read, u, project); err == nil && r >= min {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		out = []string{access.System}
	}
	return out
}

// admin is who runs the site's commands: a site admin among the run's
// users, or the operator.
func (g *gen) admin() string {
	for _, u := range g.users {
		if ok, err := auth.IsAdmin(g.ctx, g.people.DB.Read, u); err == nil && ok {
			return u
		}
	}
	return access.System
}

// projectStep creates a project, grants or revokes a role, or opens a
// ticket in a project, each valid for the state it reads.
func (g *gen) projectStep() error {
	ctx := g.ctx
	if len(g.slugs) == 0 || (len(g.slugs) < 4 && g.rng.IntN(10) == 0) {
		slug := fmt.Sprintf("p%d-%x", len(g.slugs), g.rng.Uint32())
		if err := g.valid("create_project", 1, func() error {
			return g.access.Create(ctx, g.admin(), slug, g.line(access.MaxName), g.id())
		}); err != nil {
			return err
		}
		g.slugs = append(g.slugs, slug)
		return nil
	}
	slug := g.slugs[g.rng.IntN(len(g.slugs))]
	held, err := access.Holders(ctx, g.people.DB.Read, slug)
	if err != nil {
		return err
	}
	owners := g.holding(slug, access.Owner)
	by := owners[g.rng.IntN(len(owners))]
	switch r := g.rng.IntN(10); {
	case r < 4:
		person := g.user()
		role := access.ProjectRoles[g.rng.IntN(len(access.ProjectRoles))]
		for _, h := range held {
			if h.Person == person && h.Role == role.String() {
				return g.refused("grant_again", errs.Invalid, func() error { return g.access.Grant(ctx, by, slug, person, role.String(), g.id()) })
			}
		}
		return g.valid("grant_role", 1, func() error { return g.access.Grant(ctx, by, slug, person, role.String(), g.id()) })
	case r < 6 && len(held) > 0:
		h := held[g.rng.IntN(len(held))]
		return g.valid("revoke_role", 1, func() error { return g.access.Revoke(ctx, by, slug, h.Person, g.id()) })
	case r < 7:
		p, err := access.Get(ctx, g.people.DB.Read, slug)
		if err != nil {
			return err
		}
		return g.valid("set_everyone", 1, func() error { return g.access.SetEveryone(ctx, by, slug, !p.EveryoneMember, g.id()) })
	}
	reporters := g.holding(slug, access.Reporter)
	actor := reporters[g.rng.IntN(len(reporters))]
	d := g.draft()
	d.Project = slug
	return g.valid("open_in_project", 1, func() error {
		id, err := g.tix.Open(ctx, actor, d, g.id())
		if err == nil {
			g.tickets = id
		}
		return err
	})
}
