package tickets

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"braid/internal/access"
	"braid/internal/attach"
	"braid/internal/auth"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
	"braid/internal/web"
	"braid/templates"
)

// Handlers serve the ticket pages and commands.
type Handlers struct {
	Env     *web.Env
	Service *Service
	// Watching says whether a person watches a ticket (internal/notify),
	// for the ticket page's Watch/Unwatch button; nil draws no button.
	Watching func(ctx context.Context, ticket int64, user string) (bool, error)
	// Search reads the search box (internal/search); nil keeps the plain
	// word search.
	Search Searcher
	// Uploads reads the files a multipart form carries (cmd/web/attach.go:
	// checked, hashed, within the size limit); nil: forms carry no files.
	Uploads func(c echo.Context) ([]attach.File, error)
	// Side draws the ticket page's extra box (internal/fields: custom
	// fields and relations); problem is a refused command of that box, for
	// its message beside the field. nil draws none.
	Side func(c echo.Context, t Ticket, problem error) (templ.Component, error)
	// FieldClauses turns the list's field.NAME=VALUE and sort=field.NAME
	// into SQL (internal/fields.ListClauses); nil ignores them.
	FieldClauses func(ctx context.Context, eq map[string]string, sortBy string) (where []string, args []any, keyed *Keyed, err error)
	// FieldValues are a ticket's custom field values for its JSON; nil
	// leaves them out.
	FieldValues func(ctx context.Context, ticket int64) (map[string]string, error)
	// Templates lists the ticket templates of the projects a new ticket may
	// open in, for the new-ticket page; nil offers none.
	Templates func(ctx context.Context, projects []string) ([]templates.TemplateLink, error)
}

// Searcher turns the search box's text into a Match and cuts snippets
// for the tickets it found.
type Searcher interface {
	Apply(ctx context.Context, q events.Querier, f *Filter) error
	Snippets(ctx context.Context, q events.Querier, f Filter, rows []Row) error
}

// files are the files the request carries, checked; none without Uploads.
func (h *Handlers) files(c echo.Context) ([]attach.File, error) {
	if h.Uploads == nil {
		return nil, nil
	}
	return h.Uploads(c)
}

func actor(c echo.Context) string {
	u, _ := web.CurrentUser(c.Request().Context())
	return u.ID
}

func pathID(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id < 1 {
		return 0, errs.E(errs.NotFound, "There is no such page: %q is not a number.", c.Param(name))
	}
	return id, nil
}

// usernames lists everyone for the assignee field's suggestions: the
// username to type, the display name beside it.
func (h *Handlers) usernames(ctx context.Context) []templates.Person {
	us, err := auth.All(ctx, h.Env.DB.Read)
	if err != nil {
		return nil
	}
	out := make([]templates.Person, len(us))
	for i, u := range us {
		out[i] = templates.Person{ID: u.ID, Username: u.Username, Name: u.DisplayName}
	}
	return out
}

// List shows the tickets with filters, counts and pages.
func (h *Handlers) List(c echo.Context) error {
	ctx := c.Request().Context()
	page, err := pageParam(c.QueryParam("page"))
	if err != nil {
		return err
	}
	// ?assignee= and ?author= are usernames (any case); the projection holds ids.
	assignee := strings.TrimSpace(c.QueryParam("assignee"))
	author := strings.TrimSpace(c.QueryParam("author"))
	assigneeID, err := h.personFilter(ctx, assignee)
	if err != nil {
		return err
	}
	authorID, err := h.personFilter(ctx, author)
	if err != nil {
		return err
	}
	noAssignee, err := flagParam("no_assignee", c.QueryParam("no_assignee"))
	if err != nil {
		return err
	}
	project := c.QueryParam("project")
	if c.Param("slug") != "" { // /p/{slug}: the project's page
		project = c.Param("slug")
		if err := access.Can(ctx, h.Env.DB.Read, actor(c), access.Read, project); err != nil {
			return err
		}
	} else if project != "" {
		if err := access.ValidSlug(project); err != nil {
			return errs.Field("project", "project is a project's short name; got %q", project)
		}
	}
	visible, all, err := access.Visible(ctx, h.Env.DB.Read, actor(c))
	if err != nil {
		return err
	}
	f := Filter{Status: c.QueryParam("status"), Assignee: assigneeID,
		Label: c.QueryParam("label"), Q: c.QueryParam("q"), Project: project, Page: page, Restricted: !all, Visible: visible,
		Author: authorID, NoAssignee: noAssignee, NoLabel: c.QueryParam("no_label"), Sort: c.QueryParam("sort")}
	if strings.HasPrefix(f.Sort, "field.") {
		f.Sort = "" // a custom field's order (fieldFilter), which takes the place of the list's own
	}
	if err := h.fieldFilter(c, &f); err != nil {
		return err
	}
	if h.Search != nil && strings.TrimSpace(f.Q) != "" {
		if err := h.Search.Apply(ctx, h.Env.DB.Read, &f); err != nil {
			if errs.Code(err) != errs.Invalid || web.WantsJSON(c) {
				return err
			}
			// The list again, empty, with the reason beside the search box.
			v := templates.ListView{Status: f.Status, Assignee: assignee, Label: f.Label, Q: f.Q, Page: 1, Pages: 1,
				Project: project, QError: errs.Message(err), Author: author, NoAssignee: f.NoAssignee, NoLabel: f.NoLabel, Sort: f.Sort}
			if v.Users, err = h.assignable(ctx, project); err != nil {
				return err
			}
			if v.Status == "" {
				v.Status = "open"
			}
			v.Bulk = web.Form(c)
			return web.Render(c, http.StatusUnprocessableEntity, templates.TicketList(h.Env.Page(c, "Tickets", "tickets"), v))
		}
	}
	l, err := Query(ctx, h.Env.DB.Read, f)
	if err != nil {
		return err
	}
	if h.Search != nil {
		if err := h.Search.Snippets(ctx, h.Env.DB.Read, l.Filter, l.Tickets); err != nil {
			return err
		}
	}
	l.Filter.Assignee, l.Filter.Author = assignee, author
	if web.WantsJSON(c) {
		var ids []string
		for _, r := range l.Tickets {
			ids = append(ids, r.Assignee, r.Author, r.SnippetBy)
		}
		names, err := auth.Names(ctx, h.Env.DB.Read, ids)
		if err != nil {
			return err
		}
		for i := range l.Tickets {
			l.Tickets[i].AssigneeUsername = names[l.Tickets[i].Assignee].Username
			l.Tickets[i].AuthorUsername = names[l.Tickets[i].Author].Username
			if by := l.Tickets[i].SnippetBy; by != "" {
				l.Tickets[i].SnippetByUsername = names[by].Username
			}
		}
		return c.JSON(http.StatusOK, l)
	}
	v := templates.ListView{Status: l.Filter.Status, Assignee: l.Filter.Assignee, Label: l.Filter.Label, Q: l.Filter.Q,
		Open: l.Open, Closed: l.Closed, Total: l.Total, Page: l.Page, Pages: l.Pages, Project: project, Capped: l.Capped,
		Author: l.Filter.Author, NoAssignee: l.Filter.NoAssignee, NoLabel: l.Filter.NoLabel, Sort: l.Filter.Sort}
	if v.Users, err = h.assignable(ctx, project); err != nil {
		return err
	}
	if v.Views, err = h.savedViews(ctx, actor(c)); err != nil {
		return err
	}
	v.Bulk = web.Form(c)
	title := "Tickets"
	if c.Param("slug") != "" {
		p, err := access.Get(ctx, h.Env.DB.Read, project)
		if err != nil {
			return err
		}
		v.ProjectName, title = p.Name, p.Name
	}
	var ids []string
	for _, r := range l.Tickets {
		ids = append(ids, r.Assignee, r.Author)
		if r.SnippetBy != "" {
			ids = append(ids, r.SnippetBy)
		}
	}
	who, err := h.Env.People(ctx, ids...) // one query for the page
	if err != nil {
		return err
	}
	for _, r := range l.Tickets {
		v.Rows = append(v.Rows, templates.TicketRow{ID: r.ID, Title: r.Title, Status: r.Status, Assignee: who(r.Assignee),
			Author: who(r.Author), Labels: r.Labels, Comments: r.CommentCount, UpdatedAt: r.UpdatedAt,
			Snippet: r.Snippet, SnippetIn: r.SnippetIn})
		if r.SnippetBy != "" {
			v.Rows[len(v.Rows)-1].SnippetBy = who(r.SnippetBy)
		}
	}
	return web.Render(c, http.StatusOK, templates.TicketList(h.Env.Page(c, title, "tickets"), v))
}

// fieldFilter reads field.NAME=VALUE and sort=field.NAME into f.
func (h *Handlers) fieldFilter(c echo.Context, f *Filter) error {
	if h.FieldClauses == nil {
		return nil
	}
	for k, vs := range c.QueryParams() {
		if name, ok := strings.CutPrefix(k, "field."); ok && len(vs) > 0 && vs[0] != "" {
			if len(f.Fields) >= 10 || len(name) > 200 || len(vs[0]) > 200 {
				return errs.Field("field", "Filter by at most 10 fields, each name and value up to 200 characters.")
			}
			if f.Fields == nil {
				f.Fields = map[string]string{}
			}
			f.Fields[name] = vs[0]
		}
	}
	f.FieldSort, _ = strings.CutPrefix(c.QueryParam("sort"), "field.")
	if f.FieldSort == c.QueryParam("sort") {
		f.FieldSort = "" // not a field: another sort, or none
	}
	if len(f.Fields) == 0 && f.FieldSort == "" {
		return nil
	}
	var err error
	f.Where, f.WhereArgs, f.Keyed, err = h.FieldClauses(c.Request().Context(), f.Fields, f.FieldSort)
	return err
}

// pageParam reads ?page=: empty or below 1 is the first page, a number too
// large for an int is "the last page" (Query clamps it), anything else that
// is not a whole number is refused.
func pageParam(s string) (int, error) {
	if s == "" {
		return 1, nil
	}
	p, err := strconv.Atoi(s)
	if errors.Is(err, strconv.ErrRange) {
		if strings.HasPrefix(s, "-") {
			return 1, nil
		}
		return math.MaxInt, nil
	}
	if err != nil {
		return 0, errs.Field("page", "page is a whole number from 1; got %q", s)
	}
	return max(p, 1), nil
}

// openable lists the projects where the person may open tickets, for the
// new-ticket form's select.
func (h *Handlers) openable(c echo.Context) ([]templates.ProjectOption, error) {
	ps, err := access.Allowed(c.Request().Context(), h.Env.DB.Read, actor(c), access.Open)
	if err != nil {
		return nil, err
	}
	out := make([]templates.ProjectOption, len(ps))
	for i, p := range ps {
		out[i] = templates.ProjectOption{Slug: p.Slug, Name: p.Name}
	}
	return out, nil
}

// New draws the new-ticket form (?project= preselects a project).
func (h *Handlers) New(c echo.Context) error {
	f := web.Form(c, "project")
	if web.WantsJSON(c) {
		return web.FormJSON(c, "/tickets", f)
	}
	ps, err := h.openable(c)
	if err != nil {
		return err
	}
	tpls, err := h.templates(c, ps)
	if err != nil {
		return err
	}
	// ?template=NAME fills the body with the template of that name in the
	// chosen project (or the only one offered).
	if name := c.QueryParam("template"); name != "" {
		found := false
		for _, t := range tpls {
			if t.Name == name && (t.Project == f.V("project") || f.V("project") == "" && len(ps) == 1) {
				f.Values["body"], found = t.Body, true
			}
		}
		if !found {
			return errs.E(errs.NotFound, "There is no template %q in this project.", name)
		}
	}
	return web.Render(c, http.StatusOK, templates.NewTicket(h.Env.Page(c, "New ticket", "new"), f, ps, tpls...))
}

// templates lists the templates of the projects in ps.
func (h *Handlers) templates(c echo.Context, ps []templates.ProjectOption) ([]templates.TemplateLink, error) {
	if h.Templates == nil || len(ps) == 0 {
		return nil, nil
	}
	slugs := make([]string, len(ps))
	for i, p := range ps {
		slugs[i] = p.Slug
	}
	return h.Templates(c.Request().Context(), slugs)
}

// Create opens a ticket in the project the form names (the default one
// when it names none).
func (h *Handlers) Create(c echo.Context) error {
	f := web.Form(c, "title", "body", "labels", "project")
	if wantsPreview(c) {
		return h.previewNew(c, f)
	}
	d := Draft{Title: f.V("title"), Body: normalise(f.V("body")), Labels: ParseLabels(f.V("labels")), Project: f.V("project")}
	if d.Project != "" {
		if err := access.ValidSlug(d.Project); err != nil {
			return errs.E(errs.NotFound, "There is no project %q, or you may not see it.", d.Project)
		}
	}
	files, err := h.files(c)
	var id int64
	if err == nil {
		id, err = h.Service.OpenWithFiles(c.Request().Context(), actor(c), d, files, c.FormValue("command_id"))
	}
	if code := errs.Code(err); (code == errs.Invalid || code == errs.Conflict) && !web.WantsJSON(c) {
		ps, perr := h.openable(c)
		if perr != nil {
			return perr
		}
		return web.Render(c, web.Status(code), templates.NewTicket(h.Env.Page(c, "New ticket", "new"), web.WithError(f, err), ps))
	}
	if err != nil {
		return err
	}
	if web.WantsJSON(c) {
		return h.answerTicket(c, http.StatusCreated, id)
	}
	h.Env.Flash(c, "Ticket #"+strconv.FormatInt(id, 10)+" opened.")
	return web.Redirect(c, "/tickets/"+strconv.FormatInt(id, 10))
}

// normalise turns CRLF from browsers into LF, so what is stored is what was meant.
func normalise(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

func (h *Handlers) view(c echo.Context, t Ticket) (templates.TicketView, error) {
	me := actor(c)
	ids := []string{t.Author, t.Assignee}
	for _, cm := range t.Comments {
		ids = append(ids, cm.Author)
	}
	who, err := h.Env.People(c.Request().Context(), ids...) // one query for the page
	if err != nil {
		return templates.TicketView{}, err
	}
	v := templates.TicketView{ID: t.ID, Title: t.Title, Body: t.Body, Status: t.Status, Assignee: who(t.Assignee),
		Author: who(t.Author), Labels: t.Labels, Version: t.Version, OpenedAt: t.OpenedAt, UpdatedAt: t.UpdatedAt,
		Imported: t.Imported.Line(), ImportedURL: t.Imported.Link(),
		CommentForm: web.Form(c), ActionForm: web.Form(c), AssignForm: web.Form(c), Erased: t.Erased.Sentence(),
		Tasks: taskViews(t.Body)}
	v.CommentForm.Values["body"] = ""
	v.AssignForm.Values["assignee"] = who(t.Assignee).Username
	if t.Assignee == "" {
		v.AssignForm.Values["assignee"] = ""
	}
	for _, cm := range t.Comments {
		v.Comments = append(v.Comments, templates.CommentView{ID: cm.ID, Author: who(cm.Author), Body: cm.Body,
			CreatedAt: cm.CreatedAt, EditedAt: cm.EditedAt, Position: cm.Position, Mine: cm.Author == me, Erased: cm.Erased.Sentence()})
	}
	attachViews(&v, t.Attachments)
	h.renderMarkdown(c.Request().Context(), &v)
	return v, nil
}

// Show draws a ticket, now or as of a log position (?at=P) or a time (?as_of=).
func (h *Handlers) Show(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	at, label, err := h.asOf(ctx, c)
	if err != nil {
		return err
	}
	var t Ticket
	if at > 0 {
		t, err = h.Service.Types.AsOf(ctx, h.Env.DB.Read, h.Service.Registry, id, at)
	} else {
		t, err = Get(ctx, h.Env.DB.Read, id)
	}
	if err != nil {
		return err
	}
	if web.WantsJSON(c) {
		return h.ticketJSON(c, http.StatusOK, t, at)
	}
	v, err := h.view(c, t)
	if err != nil {
		return err
	}
	v.At, v.AtLabel = at, label
	if at == 0 { // the past is read-only: no assign form, no list of people
		v.Users = h.usernames(ctx)
	}
	if at == 0 && h.Side != nil {
		if v.Side, err = h.Side(c, t, nil); err != nil {
			return err
		}
	}
	if at == 0 && h.Watching != nil {
		w, err := h.Watching(ctx, t.ID, actor(c))
		if err != nil {
			return err
		}
		v.Watch = &templates.WatchView{Watching: w, Form: web.Form(c)}
	}
	return web.Render(c, http.StatusOK, templates.TicketPage(h.Env.Page(c, t.Title, "tickets"), v))
}

// asOf reads ?at=P or ?as_of=TIME into a log position (0 means now).
func (h *Handlers) asOf(ctx context.Context, c echo.Context) (int64, string, error) {
	if s := c.QueryParam("at"); s != "" {
		p, err := strconv.ParseInt(s, 10, 64)
		if err != nil || p < 1 {
			return 0, "", errs.Field("at", "at is a log position: a whole number from 1; got %q", s)
		}
		if head := h.Env.Writer.Head().Position; p > head {
			return 0, "", errs.E(errs.NotFound, "There is no position %d: the log has only %d events.", p, head)
		}
		return p, "", nil
	}
	if s := c.QueryParam("as_of"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, "", errs.Field("as_of", "as_of is an RFC 3339 time such as 2026-11-22T10:00:00Z; got %q", s)
		}
		// A time after the last event (even one in the future) is the
		// head: the ticket as it stands now, at a position that exists.
		p, err := events.PositionAt(ctx, h.Env.DB.Read, t.UTC().Format(events.TimeFormat))
		if err != nil {
			return 0, "", err
		}
		if p == 0 {
			return 0, "", errs.E(errs.NotFound, "The log had no events yet at %s.", s)
		}
		return p, "as of " + t.UTC().Format(time.RFC3339), nil
	}
	return 0, "", nil
}

// redraw shows the ticket page again with a form's problem, at status.
func (h *Handlers) redraw(c echo.Context, id int64, err error, set func(v *templates.TicketView)) error {
	t, gerr := Get(c.Request().Context(), h.Env.DB.Read, id)
	if gerr != nil {
		return gerr
	}
	v, verr := h.view(c, t)
	if verr != nil {
		return verr
	}
	v.Users = h.usernames(c.Request().Context())
	if h.Side != nil {
		if v.Side, verr = h.Side(c, t, err); verr != nil {
			return verr
		}
	}
	set(&v)
	return web.Render(c, web.Status(errs.Code(err)), templates.TicketPage(h.Env.Page(c, t.Title, "tickets"), v))
}

// Redraw shows ticket id's page again with the extra box's refused
// command err, at the status its code maps to.
func (h *Handlers) Redraw(c echo.Context, id int64, err error) error {
	return h.redraw(c, id, err, func(v *templates.TicketView) {})
}

// command runs a ticket command from a form on the ticket page: success is
// a 303 back to the ticket; invalid input or a conflict redraws the page.
func (h *Handlers) command(c echo.Context, run func(id int64) error, onErr func(v *templates.TicketView, err error)) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	err = run(id)
	switch errs.Code(err) {
	case "":
		if web.WantsJSON(c) {
			return h.answerTicket(c, http.StatusOK, id)
		}
		return web.Redirect(c, "/tickets/"+strconv.FormatInt(id, 10))
	case errs.Invalid, errs.Conflict:
		if web.WantsJSON(c) {
			return err
		}
		return h.redraw(c, id, err, func(v *templates.TicketView) { onErr(v, err) })
	}
	return err
}

func messageOnly(v *templates.TicketView, err error) { v.Message = errs.Message(err) }

// Assign sets or clears the assignee, named by username (the ticket holds
// their id).
func (h *Handlers) Assign(c echo.Context) error {
	assignee := strings.TrimSpace(c.FormValue("assignee"))
	return h.command(c, func(id int64) error {
		ctx := c.Request().Context()
		person := ""
		if assignee != "" {
			if err := input.Line("assignee", "The assignee", assignee, MaxAssignee); err != nil {
				return err
			}
			var err error
			if person, err = auth.IDByUsername(ctx, h.Env.DB.Read, assignee); errs.Code(err) == errs.NotFound {
				return errs.Field("assignee", "There is no user called %q.", assignee)
			} else if err != nil {
				return err
			}
		}
		return h.Service.Assign(ctx, actor(c), id, person, c.FormValue("command_id"))
	}, func(v *templates.TicketView, err error) {
		v.AssignForm = web.WithError(v.AssignForm, err)
		v.AssignForm.Values["assignee"] = assignee
	})
}

// Close closes the ticket.
func (h *Handlers) Close(c echo.Context) error {
	return h.command(c, func(id int64) error {
		return h.Service.Close(c.Request().Context(), actor(c), id, c.FormValue("command_id"))
	}, messageOnly)
}

// Reopen reopens the ticket.
func (h *Handlers) Reopen(c echo.Context) error {
	return h.command(c, func(id int64) error {
		return h.Service.Reopen(c.Request().Context(), actor(c), id, c.FormValue("command_id"))
	}, messageOnly)
}

// AddComment adds a comment.
func (h *Handlers) AddComment(c echo.Context) error {
	body := normalise(c.FormValue("body"))
	if wantsPreview(c) {
		return h.previewComment(c, body)
	}
	if web.WantsJSON(c) {
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		files, err := h.files(c)
		if err != nil {
			return err
		}
		cid, err := h.Service.CommentWithFiles(c.Request().Context(), actor(c), id, body, files, c.FormValue("command_id"))
		if err != nil {
			return err
		}
		return h.answerComment(c, http.StatusCreated, id, cid)
	}
	return h.command(c, func(id int64) error {
		files, err := h.files(c)
		if err != nil {
			return err
		}
		_, err = h.Service.CommentWithFiles(c.Request().Context(), actor(c), id, body, files, c.FormValue("command_id"))
		return err
	}, func(v *templates.TicketView, err error) {
		v.CommentForm = web.WithError(v.CommentForm, err)
		v.CommentForm.Values["body"] = body
	})
}

// EditForm draws the edit-ticket form.
func (h *Handlers) EditForm(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	t, err := Get(c.Request().Context(), h.Env.DB.Read, id)
	if err != nil {
		return err
	}
	f := web.Form(c)
	f.Values = map[string]string{"title": t.Title, "body": t.Body, "labels": strings.Join(t.Labels, ", "), "version": strconv.FormatInt(t.Version, 10)}
	if web.WantsJSON(c) {
		return web.FormJSON(c, "/tickets/"+c.Param("id"), f)
	}
	return web.Render(c, http.StatusOK, templates.EditTicket(h.Env.Page(c, "Edit #"+c.Param("id"), "tickets"), templates.EditView{ID: id, Form: f}))
}

// Update saves an edit if the ticket is still at the version the form showed.
func (h *Handlers) Update(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	f := web.Form(c, "title", "body", "labels", "version")
	version, verr := strconv.ParseInt(f.V("version"), 10, 64)
	if verr != nil {
		return errs.Field("version", "the form lost its version; reload the edit page")
	}
	d := Draft{Title: f.V("title"), Body: normalise(f.V("body")), Labels: ParseLabels(f.V("labels"))}
	files, err := h.files(c)
	if err == nil {
		err = h.Service.EditWithFiles(ctx, actor(c), id, d, version, files, c.FormValue("command_id"))
	}
	switch errs.Code(err) {
	case "":
		if web.WantsJSON(c) {
			return h.answerTicket(c, http.StatusOK, id)
		}
		h.Env.Flash(c, "Ticket #"+c.Param("id")+" saved.")
		return web.Redirect(c, "/tickets/"+c.Param("id"))
	case errs.Invalid:
		if web.WantsJSON(c) {
			return err
		}
		return web.Render(c, http.StatusUnprocessableEntity, templates.EditTicket(h.Env.Page(c, "Edit #"+c.Param("id"), "tickets"), templates.EditView{ID: id, Form: web.WithError(f, err)}))
	case errs.Conflict:
		t, gerr := Get(ctx, h.Env.DB.Read, id)
		if gerr != nil {
			return gerr
		}
		if web.WantsJSON(c) && t.Version == version {
			return err // not a stale version: the command id was used for another command
		}
		if web.WantsJSON(c) {
			return errs.E(errs.Conflict, "Ticket #%d has changed since version %d (it is at version %d now): read it again, then send your change with the new version.", id, version, t.Version)
		}
		cur, verr := h.view(c, t)
		if verr != nil {
			return verr
		}
		f = web.WithError(f, err)
		f.Values["version"] = strconv.FormatInt(t.Version, 10) // saving again is a deliberate overwrite
		v := templates.EditView{ID: id, Form: f, Current: &cur}
		var by string
		if err := h.Env.DB.Read.QueryRowContext(ctx, `SELECT actor, occurred_at FROM events WHERE aggregate_type = ? AND aggregate_id = ?
			ORDER BY version DESC LIMIT 1`, Aggregate, strconv.FormatInt(id, 10)).Scan(&by, &v.ChangedAt); err != nil {
			return fmt.Errorf("who changed ticket %d: %w", id, err)
		}
		who, err := h.Env.People(ctx, by)
		if err != nil {
			return err
		}
		v.ChangedBy = who(by)
		return web.Render(c, http.StatusConflict, templates.EditTicket(h.Env.Page(c, "Edit #"+c.Param("id"), "tickets"), v))
	}
	return err
}

func (h *Handlers) comment(c echo.Context) (Ticket, Comment, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return Ticket{}, Comment{}, err
	}
	cid, err := pathID(c, "cid")
	if err != nil {
		return Ticket{}, Comment{}, err
	}
	t, err := Get(c.Request().Context(), h.Env.DB.Read, id)
	if err != nil {
		return t, Comment{}, err
	}
	for _, cm := range t.Comments {
		if cm.ID == cid {
			return t, cm, nil
		}
	}
	return t, Comment{}, errs.E(errs.NotFound, "Ticket #%d has no comment %d.", id, cid)
}

// onlyAuthor refuses (403) anyone but the comment's author, naming the
// author by username (the comment holds their id). The command checks
// again in the writer.
func (h *Handlers) onlyAuthor(c echo.Context, cm Comment, verb string) error {
	if cm.Author == actor(c) {
		return nil
	}
	who, err := h.Env.People(c.Request().Context(), cm.Author)
	if err != nil {
		return err
	}
	return errs.E(errs.Forbidden, "Only %s, who wrote this comment, may %s it.", who(cm.Author).Username, verb)
}

// EditCommentForm draws the edit form for the author's own comment.
func (h *Handlers) EditCommentForm(c echo.Context) error {
	t, cm, err := h.comment(c)
	if err != nil {
		return err
	}
	if err := h.onlyAuthor(c, cm, "edit"); err != nil {
		return err
	}
	f := web.Form(c)
	f.Values["body"] = cm.Body
	if web.WantsJSON(c) {
		return web.FormJSON(c, fmt.Sprintf("/tickets/%d/comments/%d", t.ID, cm.ID), f)
	}
	return web.Render(c, http.StatusOK, templates.EditComment(h.Env.Page(c, "Edit comment", "tickets"), templates.EditCommentView{TicketID: t.ID, CommentID: cm.ID, Form: f}))
}

// UpdateComment saves the author's edit.
func (h *Handlers) UpdateComment(c echo.Context) error {
	t, cm, err := h.comment(c)
	if err != nil {
		return err
	}
	if err := h.onlyAuthor(c, cm, "edit"); err != nil {
		return err
	}
	f := web.Form(c, "body")
	f.Values["body"] = normalise(f.V("body"))
	err = h.Service.EditComment(c.Request().Context(), actor(c), t.ID, cm.ID, f.V("body"), c.FormValue("command_id"))
	if err == nil && web.WantsJSON(c) {
		return h.answerComment(c, http.StatusOK, t.ID, cm.ID)
	}
	if code := errs.Code(err); (code == errs.Invalid || code == errs.Conflict) && !web.WantsJSON(c) {
		return web.Render(c, web.Status(code), templates.EditComment(h.Env.Page(c, "Edit comment", "tickets"), templates.EditCommentView{TicketID: t.ID, CommentID: cm.ID, Form: web.WithError(f, err)}))
	}
	if err != nil {
		return err
	}
	return web.Redirect(c, "/tickets/"+strconv.FormatInt(t.ID, 10)+"#comment-"+strconv.FormatInt(cm.ID, 10))
}

// ConfirmDeleteComment asks the author before their comment is deleted:
// a page with the DELETE form, so it works without JavaScript.
func (h *Handlers) ConfirmDeleteComment(c echo.Context) error {
	t, cm, err := h.comment(c)
	if err != nil {
		return err
	}
	if err := h.onlyAuthor(c, cm, "delete"); err != nil {
		return err
	}
	f := web.Form(c)
	if web.WantsJSON(c) {
		return web.FormJSON(c, fmt.Sprintf("/tickets/%d/comments/%d", t.ID, cm.ID), f)
	}
	return web.Render(c, http.StatusOK, templates.ConfirmDelete(h.Env.Page(c, "Delete comment?", "tickets"),
		templates.ConfirmDeleteView{TicketID: t.ID, CommentID: cm.ID, Body: cm.Body, Form: f}))
}

// DeleteComment deletes the author's own comment (its events stay).
func (h *Handlers) DeleteComment(c echo.Context) error {
	t, cm, err := h.comment(c)
	if err != nil {
		return err
	}
	if err := h.onlyAuthor(c, cm, "delete"); err != nil {
		return err
	}
	if err := h.Service.DeleteComment(c.Request().Context(), actor(c), t.ID, cm.ID, c.FormValue("command_id")); err != nil {
		return err
	}
	if web.WantsJSON(c) {
		return c.JSON(http.StatusOK, map[string]any{"deleted": true})
	}
	h.Env.Flash(c, "Comment deleted. Its events stay in the log; the history shows it.")
	return web.Redirect(c, "/tickets/"+strconv.FormatInt(t.ID, 10))
}

// History lists every event of the ticket with what it changed.
func (h *Handlers) History(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	steps, err := h.Service.Types.History(ctx, h.Env.DB.Read, h.Service.Registry, id)
	if err != nil {
		return err
	}
	if web.WantsJSON(c) {
		out := make([]map[string]any, len(steps))
		for i, s := range steps {
			out[i] = map[string]any{"event": s.Event, "changes": s.Changes}
		}
		return c.JSON(http.StatusOK, map[string]any{"ticket": id, "events": out})
	}
	var ids []string
	for _, s := range steps {
		ids = append(ids, s.Event.Actor)
	}
	who, err := h.Env.People(ctx, ids...)
	if err != nil {
		return err
	}
	v := templates.HistoryView{ID: id}
	for _, s := range steps {
		row := web.EventRow(&s.Event, who)
		row.AsOfLink = "/tickets/" + strconv.FormatInt(id, 10) + "?at=" + strconv.FormatInt(s.Event.Position, 10)
		for _, ch := range s.Changes {
			row.Changes = append(row.Changes, templates.Diff{Field: ch.Field, Before: ch.Before, After: ch.After})
		}
		v.Rows = append(v.Rows, row)
	}
	if last, err := Get(ctx, h.Env.DB.Read, id); err == nil {
		v.Title = last.Title
	}
	return web.Render(c, http.StatusOK, templates.History(h.Env.Page(c, "History of #"+c.Param("id"), "tickets"), v))
}

// CanRead guards every page under /tickets/{id}: a ticket in a project
// the person may not see is answered 404, like one that does not exist.
// Commands pass through: each checks what it needs inside the writer and
// answers 403.
func (h *Handlers) CanRead(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if m := c.Request().Method; m != http.MethodGet && m != http.MethodHead {
			return next(c) // a command: refused (403) or not by the command itself
		}
		id, err := pathID(c, "id")
		if err != nil {
			return err
		}
		if err := access.CanTicket(c.Request().Context(), h.Env.DB.Read, actor(c), access.Read, id); err != nil {
			return err
		}
		return next(c)
	}
}
