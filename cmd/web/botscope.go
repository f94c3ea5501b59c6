package main

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/web"
)

// botScope keeps a bot token (one bound to a project, docs/api.md) to its
// project: /p/{its slug}/…, its project's tickets, and opening a ticket
// there. Any other project is 403 (404 when its maker may not see it);
// every other route (site and admin pages, accounts, lists across
// projects, the inbox) is 403. It runs after jsonBody, so a JSON body's
// "project" is read like a form's. Personal tokens and browsers pass.
func botScope(w *web.Env) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			ctx := c.Request().Context()
			t, ok := web.TokenOf(ctx)
			if !ok || t.Project == "" {
				return next(c)
			}
			u, _ := web.CurrentUser(ctx)
			other := func(project string) error {
				if project == t.Project {
					return nil
				}
				if err := access.Can(ctx, w.DB.Read, u.ID, access.Read, project); err != nil {
					return err // 404: a project its maker may not see
				}
				return errs.E(errs.Forbidden, "This token works only on project %q.", t.Project)
			}
			path := c.Path()
			switch {
			case strings.HasPrefix(path, "/p/:slug"):
				if err := other(c.Param("slug")); err != nil {
					return err
				}
				return next(c)
			case strings.HasPrefix(path, "/tickets/:id"):
				id, err := strconv.ParseInt(c.Param("id"), 10, 64)
				if err != nil {
					return errs.E(errs.NotFound, "There is no ticket %q.", c.Param("id"))
				}
				p, err := access.TicketProject(ctx, w.DB.Read, id)
				if err != nil {
					return err
				}
				if err := other(p); err != nil {
					if errs.Code(err) == errs.NotFound {
						return errs.E(errs.NotFound, "There is no ticket #%d.", id)
					}
					return err
				}
				return next(c)
			case path == "/tickets" && c.Request().Method == http.MethodPost:
				r := c.Request()
				p := strings.TrimSpace(r.FormValue("project"))
				if p == "" {
					// Opened in the token's project unless it names another.
					if r.PostForm == nil {
						_ = r.ParseForm()
					}
					r.PostForm.Set("project", t.Project)
					r.Form.Set("project", t.Project)
				} else if err := other(p); err != nil {
					return err
				}
				return next(c)
			}
			return errs.E(errs.Forbidden, "This token works only on project %q: use /p/%s/….", t.Project, t.Project)
		}
	}
}
