package access

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/web"
	"braid/templates"
)

// Handlers serve /projects and the pages of each project but its ticket
// list (internal/tickets draws that, filtered).
type Handlers struct {
	Env     *web.Env
	Service *Service
	// Lookup resolves a username typed in a form to a person's id
	// (auth.IDByUsername).
	Lookup func(ctx context.Context, q events.Querier, username string) (string, error)
	// Invite makes an invitation into project with role and returns its
	// secret ("" when the same form was sent twice); internal/auth.
	Invite func(ctx context.Context, actor, project, role, note string, hours int, commandID string) (token string, err error)
	// Describe puts other features' events in plain words (tickets.Describe).
	Describe func(ctx context.Context, q events.Querier, evs []events.Event) (map[int64]templates.Activity, error)
}

func actor(c echo.Context) string {
	u, _ := web.CurrentUser(c.Request().Context())
	return u.ID
}

// project reads the project of the path and checks the person may see it
// (404 otherwise, so a hidden project's name does not leak).
func (h *Handlers) project(c echo.Context) (Project, Role, error) {
	ctx := c.Request().Context()
	slug := c.Param("slug")
	if ValidSlug(slug) != nil {
		return Project{}, None, errs.E(errs.NotFound, "There is no project %q, or you may not see it.", slug)
	}
	if err := Can(ctx, h.Env.DB.Read, actor(c), Read, slug); err != nil {
		return Project{}, None, err
	}
	p, err := Get(ctx, h.Env.DB.Read, slug)
	if err != nil {
		return p, None, err
	}
	r, err := RoleIn(ctx, h.Env.DB.Read, actor(c), slug)
	return p, r, err
}

// List shows the projects the person may see; a site admin also gets the
// form that makes one.
func (h *Handlers) List(c echo.Context) error {
	return h.list(c, http.StatusOK, web.Form(c))
}

func (h *Handlers) list(c echo.Context, status int, create templates.Form) error {
	ctx := c.Request().Context()
	ps, err := List(ctx, h.Env.DB.Read)
	if err != nil {
		return err
	}
	me := actor(c)
	v := templates.ProjectsView{Create: create, CanCreate: Can(ctx, h.Env.DB.Read, me, CreateProject, "") == nil}
	var visible []Project
	for _, p := range ps {
		r, err := RoleIn(ctx, h.Env.DB.Read, me, p.Slug)
		if err != nil {
			return err
		}
		if r < Viewer {
			continue
		}
		visible = append(visible, p)
		v.Rows = append(v.Rows, templates.ProjectRow{Slug: p.Slug, Name: p.Name, Role: r.String(), Everyone: p.EveryoneMember})
	}
	if web.WantsJSON(c) {
		if visible == nil {
			visible = []Project{}
		}
		return c.JSON(status, map[string]any{"projects": visible})
	}
	return web.Render(c, status, templates.Projects(h.Env.Page(c, "Projects", "projects"), v))
}

// Create makes a project (site admins).
func (h *Handlers) Create(c echo.Context) error {
	f := web.Form(c, "slug", "name")
	err := h.Service.Create(c.Request().Context(), actor(c), f.V("slug"), f.V("name"), c.FormValue("command_id"))
	if errs.Code(err) == errs.Invalid && !web.WantsJSON(c) {
		return h.list(c, http.StatusUnprocessableEntity, web.WithError(f, err))
	}
	if err != nil {
		return err
	}
	slug := strings.TrimSpace(f.V("slug"))
	if web.WantsJSON(c) { // a script: 201, the project and where it lives
		p, err := Get(c.Request().Context(), h.Env.DB.Read, slug)
		if err != nil {
			return err
		}
		c.Response().Header().Set(echo.HeaderLocation, "/p/"+slug)
		return c.JSON(http.StatusCreated, map[string]any{"project": p})
	}
	h.Env.Flash(c, fmt.Sprintf("Project %s created. Give people roles on its people page.", strings.TrimSpace(f.V("name"))))
	return web.Redirect(c, "/p/"+slug+"/people")
}

// People shows who holds which role in the project, with the forms owners
// and admins use to change that.
func (h *Handlers) People(c echo.Context) error {
	return h.people(c, http.StatusOK, nil)
}

func (h *Handlers) people(c echo.Context, status int, set func(v *templates.ProjectPeopleView)) error {
	ctx := c.Request().Context()
	p, role, err := h.project(c)
	if err != nil {
		return err
	}
	ms, err := Holders(ctx, h.Env.DB.Read, p.Slug)
	if err != nil {
		return err
	}
	if web.WantsJSON(c) && set == nil {
		return c.JSON(status, map[string]any{"project": p, "roles": ms})
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.Person, m.GrantedBy)
	}
	who, err := h.Env.People(ctx, ids...)
	if err != nil {
		return err
	}
	v := templates.ProjectPeopleView{Slug: p.Slug, Name: p.Name, Everyone: p.EveryoneMember, CanManage: role >= Table[ManageRoles],
		Grant: web.Form(c), Setting: web.Form(c), Invite: web.Form(c), Bot: web.Form(c)}
	v.Invite.Values["expires_in"] = "72"
	for _, m := range ms {
		v.Members = append(v.Members, templates.ProjectMember{Who: who(m.Person), Role: m.Role, GrantedBy: who(m.GrantedBy),
			GrantedAt: m.GrantedAt, CommandID: events.NewID()})
	}
	if set != nil {
		set(&v)
	}
	return web.Render(c, status, templates.ProjectPeople(h.Env.Page(c, "People of "+p.Name, "projects"), v))
}

// formError draws the people page again with err beside the form's
// fields (422) when it is a field error; other errors go to the error page.
func (h *Handlers) formError(c echo.Context, err error, set func(v *templates.ProjectPeopleView, f templates.Form), names ...string) error {
	if errs.Code(err) != errs.Invalid || web.WantsJSON(c) {
		return err // a script gets the JSON error table
	}
	f := web.WithError(web.Form(c, names...), err)
	return h.people(c, http.StatusUnprocessableEntity, func(v *templates.ProjectPeopleView) { set(v, f) })
}

// Grant gives a person (by username) a role in the project.
func (h *Handlers) Grant(c echo.Context) error {
	ctx := c.Request().Context()
	slug := c.Param("slug")
	username := strings.TrimSpace(c.FormValue("person"))
	onGrant := func(v *templates.ProjectPeopleView, f templates.Form) { v.Grant = f }
	person, err := h.Lookup(ctx, h.Env.DB.Read, username)
	if errs.Code(err) == errs.NotFound {
		// Whether the person exists is told only to who may manage roles.
		if cerr := Can(ctx, h.Env.DB.Read, actor(c), ManageRoles, slug); cerr != nil {
			return cerr
		}
		err = errs.Field("person", "There is nobody called %q.", username)
	}
	if err == nil {
		err = h.Service.Grant(ctx, actor(c), slug, person, c.FormValue("role"), c.FormValue("command_id"))
	}
	if err != nil {
		return h.formError(c, err, onGrant, "person", "role")
	}
	h.Env.Flash(c, fmt.Sprintf("%s is now %s in this project.", username, c.FormValue("role")))
	return web.Redirect(c, "/p/"+slug+"/people")
}

// Revoke takes a person's role in the project away.
func (h *Handlers) Revoke(c echo.Context) error {
	slug := c.Param("slug")
	username := strings.TrimSpace(c.FormValue("person"))
	person, err := h.Lookup(c.Request().Context(), h.Env.DB.Read, username)
	if errs.Code(err) == errs.NotFound {
		person, err = username, nil // refused in the command, after the role check
	}
	if err == nil {
		err = h.Service.Revoke(c.Request().Context(), actor(c), slug, person, c.FormValue("command_id"))
	}
	if err != nil {
		return h.formError(c, err, func(v *templates.ProjectPeopleView, f templates.Form) { v.Grant = f }, "person")
	}
	h.Env.Flash(c, fmt.Sprintf("%s no longer holds a role in this project.", username))
	return web.Redirect(c, "/p/"+slug+"/people")
}

// SetEveryone turns "everyone signed in is a member" on (on=1) or off.
func (h *Handlers) SetEveryone(c echo.Context) error {
	slug := c.Param("slug")
	on := c.FormValue("on") == "1"
	if v := c.FormValue("on"); v != "0" && v != "1" {
		return errs.Field("on", "on is 0 or 1")
	}
	err := h.Service.SetEveryone(c.Request().Context(), actor(c), slug, on, c.FormValue("command_id"))
	if err != nil {
		return h.formError(c, err, func(v *templates.ProjectPeopleView, f templates.Form) { v.Setting = f })
	}
	if on {
		h.Env.Flash(c, "Everyone signed in is now a member of this project.")
	} else {
		h.Env.Flash(c, "Only the people listed here may now see this project.")
	}
	return web.Redirect(c, "/p/"+slug+"/people")
}

// CreateInvitation makes an invitation link into the project (owners and
// admins) and shows it once, on the page this POST answers (201).
func (h *Handlers) CreateInvitation(c echo.Context) error {
	slug := c.Param("slug")
	hours, perr := strconv.Atoi(strings.TrimSpace(c.FormValue("expires_in")))
	if perr != nil {
		hours = 0 // refused by the command, beside the field
	}
	token, err := h.Invite(c.Request().Context(), actor(c), slug, c.FormValue("role"), c.FormValue("note"), hours, c.FormValue("command_id"))
	if err != nil {
		return h.formError(c, err, func(v *templates.ProjectPeopleView, f templates.Form) { v.Invite = f }, "role", "expires_in", "note")
	}
	if web.WantsJSON(c) { // a script: the link once, as JSON (docs/api.md)
		link := ""
		if token != "" {
			link = c.Scheme() + "://" + c.Request().Host + "/join/" + token
		}
		return c.JSON(http.StatusCreated, map[string]any{"link": link, "repeated": token == ""})
	}
	return h.people(c, http.StatusCreated, func(v *templates.ProjectPeopleView) {
		if token == "" {
			v.Repeated = true
			return
		}
		v.NewLink = c.Scheme() + "://" + c.Request().Host + "/join/" + token
	})
}

const historySize = 200

// History shows the project's events: its tickets' and its own.
func (h *Handlers) History(c echo.Context) error {
	ctx := c.Request().Context()
	p, _, err := h.project(c)
	if err != nil {
		return err
	}
	evs, err := History(ctx, h.Env.DB.Read, p.Slug, historySize)
	if err != nil {
		return err
	}
	if web.WantsJSON(c) {
		return c.JSON(http.StatusOK, map[string]any{"project": p, "events": evs})
	}
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.Actor)
		var d struct{ Person, By string }
		if json.Unmarshal(e.Data, &d) == nil {
			ids = append(ids, d.Person, d.By)
		}
	}
	who, err := h.Env.People(ctx, ids...)
	if err != nil {
		return err
	}
	words := map[int64]templates.Activity{}
	if h.Describe != nil {
		if words, err = h.Describe(ctx, h.Env.DB.Read, evs); err != nil {
			return err
		}
	}
	v := templates.ProjectHistoryView{Slug: p.Slug, Name: p.Name}
	for i := range evs {
		e := &evs[i]
		v.Rows = append(v.Rows, web.EventRow(e, who))
		v.Details = append(v.Details, detail(e, words, who))
	}
	return web.Render(c, http.StatusOK, templates.ProjectHistory(h.Env.Page(c, "History of "+p.Name, "projects"), v))
}

// detail says what one event of the project's history did.
func detail(e *events.Event, words map[int64]templates.Activity, who func(string) templates.Person) string {
	name := func(id string) string {
		p := who(id)
		if p.Name != "" {
			return p.Name + " (" + p.Username + ")"
		}
		return id
	}
	var d struct {
		Name, Person, Role, By, Reason string
		On                             bool
	}
	_ = json.Unmarshal(e.Data, &d)
	switch e.Type {
	case "project_created":
		return "created the project " + d.Name
	case "project_role_granted":
		s := "made " + name(d.Person) + " " + d.Role + ", granted by " + name(d.By)
		if d.Reason == "invitation" {
			s += " (through an invitation)"
		}
		return s
	case "project_role_revoked":
		return "took the role " + d.Role + " from " + name(d.Person) + ", revoked by " + name(d.By)
	case "project_setting_set":
		if d.On {
			return "made everyone signed in a member"
		}
		return "stopped making everyone a member"
	}
	if a, ok := words[e.Position]; ok {
		return a.Words + " " + a.What
	}
	return ""
}
