package tickets

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"braid/internal/access"
	"braid/internal/auth"
	"braid/internal/errs"
	"braid/internal/web"
	"braid/templates"
)

// personFilter turns a username typed in a list filter (any case) into a
// person id; nobody by that name matches no ticket.
func (h *Handlers) personFilter(ctx context.Context, username string) (string, error) {
	if username == "" {
		return "", nil
	}
	id, err := auth.IDByUsername(ctx, h.Env.DB.Read, username)
	if errs.Code(err) == errs.NotFound {
		return "!nobody", nil // no id starts with "!": an empty list
	}
	return id, err
}

// flagParam reads a yes/no list parameter: 1 or empty.
func flagParam(name, s string) (bool, error) {
	switch s {
	case "":
		return false, nil
	case "1":
		return true, nil
	}
	return false, errs.Field(name, "%s is 1 or left out; got %q", name, s)
}

// assignable lists who may be assigned tickets of the project (everyone
// on a project where everyone signed in is a member, else those holding
// a role there), for the list's assignee pick-list; every person on the
// list of every project.
func (h *Handlers) assignable(ctx context.Context, project string) ([]templates.Person, error) {
	all := h.usernames(ctx)
	if project == "" {
		return all, nil
	}
	p, err := access.Get(ctx, h.Env.DB.Read, project)
	if errs.Code(err) == errs.NotFound {
		return nil, nil
	}
	if err != nil || p.EveryoneMember {
		return all, err
	}
	holders, err := access.Holders(ctx, h.Env.DB.Read, project)
	if err != nil {
		return nil, err
	}
	out := []templates.Person{}
	for _, u := range all {
		if slices.ContainsFunc(holders, func(x access.Holder) bool { return x.Person == u.ID }) {
			out = append(out, u)
		}
	}
	return out, nil
}

func (h *Handlers) savedViews(ctx context.Context, person string) ([]templates.SavedView, error) {
	vs, err := Views(ctx, h.Env.DB.Read, person)
	if err != nil {
		return nil, err
	}
	out := make([]templates.SavedView, len(vs))
	for i, v := range vs {
		out[i] = templates.SavedView{Name: v.Name, URL: "/tickets?" + v.Query}
	}
	return out, nil
}

// backTo is where the result page of a bulk request links back to: the
// list the form was on (a path under /tickets or /p/), else /tickets.
func backTo(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || strings.HasPrefix(s, "//") ||
		!(u.Path == "/tickets" || strings.HasPrefix(u.Path, "/p/")) {
		return "/tickets"
	}
	return u.RequestURI()
}

// Bulk runs one action on the tickets chosen on the list (POST
// /tickets/bulk): each ticket its own command, all in one commit. The
// answer lists which were done and which refused, and why.
func (h *Handlers) Bulk(c echo.Context) error {
	ctx := c.Request().Context()
	if err := c.Request().ParseForm(); err != nil {
		return errs.Field("tickets", "The form could not be read.")
	}
	b := Bulk{Action: c.FormValue("action"), Label: c.FormValue("label")}
	for _, v := range c.Request().PostForm["tickets"] {
		for _, s := range strings.Split(v, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil || id < 1 {
				return errs.Field("tickets", "Tickets are given by number; %q is not one.", s)
			}
			b.Tickets = append(b.Tickets, id)
			if len(b.Tickets) > BulkMax {
				return errs.Field("tickets", "Change at most %d tickets at once.", BulkMax)
			}
		}
	}
	if b.Action == "assign" {
		name := strings.TrimSpace(c.FormValue("assignee"))
		if name != "" {
			id, err := auth.IDByUsername(ctx, h.Env.DB.Read, name)
			if errs.Code(err) == errs.NotFound {
				return errs.Field("assignee", "There is nobody called %q.", name)
			}
			if err != nil {
				return err
			}
			b.Assignee = id
		}
	}
	out, err := h.Service.Bulk(ctx, actor(c), b, c.FormValue("command_id"))
	if err != nil {
		return err
	}
	if web.WantsJSON(c) {
		return c.JSON(http.StatusOK, map[string]any{"action": b.Action, "results": out})
	}
	v := templates.BulkView{Action: b.Action, Back: backTo(c.FormValue("back"))}
	for _, o := range out {
		row := templates.BulkRow{ID: o.Ticket, Done: o.Done, Repeated: o.Repeated, Reason: o.Reason}
		if o.Done {
			v.Done++
		}
		v.Rows = append(v.Rows, row)
	}
	return web.Render(c, http.StatusOK, templates.BulkResult(h.Env.Page(c, "Bulk change", "tickets"), v))
}

// SaveView saves the list's current query under a name for the person
// (POST /tickets/views) and shows that view.
func (h *Handlers) SaveView(c echo.Context) error {
	name, query := c.FormValue("name"), c.FormValue("query")
	if err := h.Service.SaveView(c.Request().Context(), actor(c), name, query, c.FormValue("command_id")); err != nil {
		return err // 422 with the reason: the list's form cannot hold much more than the name
	}
	q, _ := ViewQuery(query)
	h.Env.Flash(c, "View “"+strings.TrimSpace(name)+"” saved.")
	return web.Redirect(c, "/tickets?"+q)
}

// DeleteView deletes one of the person's saved views (POST
// /tickets/views/delete).
func (h *Handlers) DeleteView(c echo.Context) error {
	name := c.FormValue("name")
	if err := h.Service.DeleteView(c.Request().Context(), actor(c), name, c.FormValue("command_id")); err != nil {
		return err
	}
	h.Env.Flash(c, "View “"+strings.TrimSpace(name)+"” deleted.")
	return web.Redirect(c, "/tickets")
}
