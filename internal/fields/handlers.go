package fields

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/tickets"
	"braid/internal/web"
	"braid/templates"
)

// Handlers serve the fields page of a project and the ticket page's box
// of fields and relations.
type Handlers struct {
	Env     *web.Env
	Service *Service
	Tickets *tickets.Handlers // to draw the ticket page again after a refused command
}

func actor(c echo.Context) string {
	u, _ := web.CurrentUser(c.Request().Context())
	return u.ID
}

// project reads the project of /p/{slug}/… the reader may see, and
// whether they may manage its fields and templates.
func (h *Handlers) project(c echo.Context) (access.Project, bool, error) {
	ctx := c.Request().Context()
	slug := c.Param("slug")
	if access.ValidSlug(slug) != nil {
		return access.Project{}, false, errs.E(errs.NotFound, "There is no project %q, or you may not see it.", slug)
	}
	if err := access.Can(ctx, h.Env.DB.Read, actor(c), access.Read, slug); err != nil {
		return access.Project{}, false, err
	}
	p, err := access.Get(ctx, h.Env.DB.Read, slug)
	if err != nil {
		return p, false, err
	}
	return p, access.Can(ctx, h.Env.DB.Read, actor(c), access.ManageFields, slug) == nil, nil
}

// Page shows a project's fields and templates (GET /p/{slug}/fields).
func (h *Handlers) Page(c echo.Context) error {
	return h.page(c, http.StatusOK, func(v *templates.FieldsView) {})
}

func (h *Handlers) page(c echo.Context, status int, set func(v *templates.FieldsView)) error {
	ctx := c.Request().Context()
	p, manage, err := h.project(c)
	if err != nil {
		return err
	}
	fs, err := List(ctx, h.Env.DB.Read, p.Slug)
	if err != nil {
		return err
	}
	ts, err := Templates(ctx, h.Env.DB.Read, p.Slug)
	if err != nil {
		return err
	}
	if web.WantsJSON(c) && status < 400 { // a script: the project's fields and templates
		if fs == nil {
			fs = []Field{}
		}
		if ts == nil {
			ts = []Template{}
		}
		return c.JSON(status, map[string]any{"project": p.Slug, "fields": fs, "templates": ts, "can_manage": manage})
	}
	v := templates.FieldsView{Slug: p.Slug, Name: p.Name, CanManage: manage,
		Define: web.Form(c), Template: web.Form(c), Remove: web.Form(c)}
	v.Define.Values["kind"] = Text
	for _, f := range fs {
		v.Fields = append(v.Fields, templates.FieldValue{Name: f.Name, Kind: f.Kind, Choices: f.Choices})
	}
	for _, t := range ts {
		v.Templates = append(v.Templates, templates.TemplateLink{Project: p.Slug, ProjectName: p.Name, Name: t.Name, Body: t.Body})
	}
	set(&v)
	return web.Render(c, status, templates.ProjectFields(h.Env.Page(c, "Fields of "+p.Name, "projects"), v))
}

// after answers a command of the fields page: 303 back on success, the
// page with the form's problem on invalid input.
func (h *Handlers) after(c echo.Context, err error, flash string, set func(v *templates.FieldsView, err error)) error {
	switch errs.Code(err) {
	case "":
		h.Env.Flash(c, flash)
		return web.Redirect(c, "/p/"+c.Param("slug")+"/fields")
	case errs.Invalid, errs.Conflict:
		if web.WantsJSON(c) {
			return err
		}
		return h.page(c, web.Status(errs.Code(err)), func(v *templates.FieldsView) { set(v, err) })
	}
	return err
}

// Save defines or changes a field (POST /p/{slug}/fields).
func (h *Handlers) Save(c echo.Context) error {
	f := Field{Project: c.Param("slug"), Name: strings.TrimSpace(c.FormValue("name")), Kind: c.FormValue("kind"),
		Choices: ParseChoices(strings.ReplaceAll(c.FormValue("choices"), "\r\n", "\n"))}
	err := h.Service.Save(c.Request().Context(), actor(c), f, c.FormValue("command_id"))
	return h.after(c, err, "Field "+f.Name+" saved.", func(v *templates.FieldsView, err error) {
		v.Define = web.WithError(web.Form(c, "name", "kind", "choices"), err)
	})
}

// Remove removes a field (POST /p/{slug}/fields/remove).
func (h *Handlers) Remove(c echo.Context) error {
	name := c.FormValue("name")
	err := h.Service.Remove(c.Request().Context(), actor(c), c.Param("slug"), name, c.FormValue("command_id"))
	return h.after(c, err, "Field "+name+" removed.", func(v *templates.FieldsView, err error) {
		v.Remove = web.WithError(v.Remove, err)
	})
}

// SaveTemplate defines or replaces a template (POST /p/{slug}/templates).
func (h *Handlers) SaveTemplate(c echo.Context) error {
	name, body := c.FormValue("name"), strings.ReplaceAll(c.FormValue("body"), "\r\n", "\n")
	err := h.Service.SaveTemplate(c.Request().Context(), actor(c), c.Param("slug"), name, body, c.FormValue("command_id"))
	return h.after(c, err, "Template "+strings.TrimSpace(name)+" saved.", func(v *templates.FieldsView, err error) {
		v.Template = web.WithError(web.Form(c, "name", "body"), err)
	})
}

// RemoveTemplate removes a template (POST /p/{slug}/templates/remove).
func (h *Handlers) RemoveTemplate(c echo.Context) error {
	name := c.FormValue("name")
	err := h.Service.RemoveTemplate(c.Request().Context(), actor(c), c.Param("slug"), name, c.FormValue("command_id"))
	return h.after(c, err, "Template "+name+" removed.", func(v *templates.FieldsView, err error) {
		v.Remove = web.WithError(v.Remove, err)
	})
}

func ticketID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, errs.E(errs.NotFound, "There is no such page: %q is not a number.", c.Param("id"))
	}
	return id, nil
}

// ticketCommand answers a command of the ticket page's box: 303 back to
// the ticket, or the page again with the problem beside its field.
func (h *Handlers) ticketCommand(c echo.Context, run func(id int64) error) error {
	id, err := ticketID(c)
	if err != nil {
		return err
	}
	err = run(id)
	switch errs.Code(err) {
	case "":
		if web.WantsJSON(c) {
			return c.JSON(http.StatusOK, map[string]any{"ticket": id})
		}
		return web.Redirect(c, "/tickets/"+strconv.FormatInt(id, 10))
	case errs.Invalid, errs.Conflict:
		if web.WantsJSON(c) {
			return err
		}
		return h.Tickets.Redraw(c, id, err)
	}
	return err
}

// SetValue sets a field of a ticket (POST /tickets/{id}/fields: field, value).
func (h *Handlers) SetValue(c echo.Context) error {
	return h.ticketCommand(c, func(id int64) error {
		return h.Service.SetValue(c.Request().Context(), actor(c), id, c.FormValue("field"), c.FormValue("value"), c.FormValue("command_id"))
	})
}

func otherParam(c echo.Context) (int64, error) {
	s := strings.TrimPrefix(strings.TrimSpace(c.FormValue("other")), "#")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, errs.Field("other", "Give the other ticket's number, such as 12; %q is not one.", c.FormValue("other"))
	}
	return n, nil
}

// Relate links two tickets (POST /tickets/{id}/relations: kind, other).
func (h *Handlers) Relate(c echo.Context) error {
	return h.ticketCommand(c, func(id int64) error {
		other, err := otherParam(c)
		if err != nil {
			return err
		}
		return h.Service.Relate(c.Request().Context(), actor(c), id, c.FormValue("kind"), other, c.FormValue("command_id"))
	})
}

// Unrelate removes a link (POST /tickets/{id}/relations/remove: kind, other).
func (h *Handlers) Unrelate(c echo.Context) error {
	return h.ticketCommand(c, func(id int64) error {
		other, err := otherParam(c)
		if err != nil {
			return err
		}
		return h.Service.Unrelate(c.Request().Context(), actor(c), id, c.FormValue("kind"), other, c.FormValue("command_id"))
	})
}

// Side draws the ticket page's box (tickets.Handlers.Side); problem is
// the refused command of this box, if any, to show beside its field.
func (h *Handlers) Side(c echo.Context, t tickets.Ticket, problem error) (templ.Component, error) {
	ctx := c.Request().Context()
	q := h.Env.DB.Read
	fs, err := List(ctx, q, t.Project)
	if err != nil {
		return nil, err
	}
	vals, err := Values(ctx, q, t.ID)
	if err != nil {
		return nil, err
	}
	visible, all, err := access.Visible(ctx, q, actor(c))
	if err != nil {
		return nil, err
	}
	rels, err := Relations(ctx, q, t.ID, visible, all)
	if err != nil {
		return nil, err
	}
	action := access.Edit
	if t.Author == actor(c) {
		action = access.EditOwnTicket
	}
	v := templates.SideView{ID: t.ID, CanEdit: access.Can(ctx, q, actor(c), action, t.Project) == nil, Relate: web.Form(c)}
	mine := problem != nil && strings.HasSuffix(c.Path(), "/relations")
	for _, f := range fs {
		fv := templates.FieldValue{Name: f.Name, Kind: f.Kind, Choices: f.Choices, Value: vals[f.Name], Form: web.Form(c)}
		fv.Form.Values["value"] = vals[f.Name]
		if problem != nil && strings.HasSuffix(c.Path(), "/fields") && c.FormValue("field") == f.Name {
			fv.Form = web.WithError(web.Form(c, "value"), problem)
		}
		v.Fields = append(v.Fields, fv)
	}
	for _, r := range rels {
		v.Relations = append(v.Relations, templates.RelationView{Kind: r.Kind, Words: RelationWords[r.Kind], Other: r.Other,
			Title: r.Title, Status: r.Status, Form: web.Form(c)})
	}
	for _, k := range RelationKinds {
		v.Kinds = append(v.Kinds, templates.RelationKind{Kind: k, Words: RelationWords[k]})
	}
	if mine || (problem != nil && strings.HasSuffix(c.Path(), "/relations/remove")) {
		v.Relate = web.WithError(web.Form(c, "kind", "other"), problem)
		if strings.HasSuffix(c.Path(), "/remove") {
			v.Relate.Values = map[string]string{}
		}
	}
	// Only the CSRF token of the page: Env.Page would take the flash the
	// ticket page itself shows.
	return templates.TicketSide(templates.Page{CSRF: web.CSRF(c)}, v), nil
}

// TemplatesOf lists the templates of projects for the new-ticket page
// (tickets.Handlers.Templates).
func (h *Handlers) TemplatesOf(ctx context.Context, projects []string) ([]templates.TemplateLink, error) {
	var out []templates.TemplateLink
	for _, slug := range projects {
		ts, err := Templates(ctx, h.Env.DB.Read, slug)
		if err != nil {
			return nil, err
		}
		if len(ts) == 0 {
			continue
		}
		p, err := access.Get(ctx, h.Env.DB.Read, slug)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			out = append(out, templates.TemplateLink{Project: slug, ProjectName: p.Name, Name: t.Name, Body: t.Body})
		}
	}
	return out, nil
}

// ListClauses is ListClauses on the read pool (tickets.Handlers.FieldClauses).
func (h *Handlers) ListClauses(ctx context.Context, eq map[string]string, sortBy string) ([]string, []any, *tickets.Keyed, error) {
	return ListClauses(ctx, h.Env.DB.Read, eq, sortBy)
}

// FieldValues is Values on the read pool (tickets.Handlers.FieldValues).
func (h *Handlers) FieldValues(ctx context.Context, ticket int64) (map[string]string, error) {
	return Values(ctx, h.Env.DB.Read, ticket)
}
