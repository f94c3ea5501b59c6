package hooks

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/web"
	"braid/templates"
)

// Handlers serve /p/{slug}/webhooks: owners and site admins only (403 for
// anyone else who may see the project, 404 for who may not).
type Handlers struct {
	Env     *web.Env
	Service *Service
}

const logSize = 200

func actor(c echo.Context) string {
	u, _ := web.CurrentUser(c.Request().Context())
	return u.ID
}

// project checks the person may see the project (404) and manage its
// webhooks (403).
func (h *Handlers) project(c echo.Context) (access.Project, error) {
	ctx := c.Request().Context()
	slug := c.Param("slug")
	if access.ValidSlug(slug) != nil {
		return access.Project{}, errs.E(errs.NotFound, "There is no project %q, or you may not see it.", slug)
	}
	if err := access.Can(ctx, h.Env.DB.Read, actor(c), access.Read, slug); err != nil {
		return access.Project{}, err
	}
	if err := access.Can(ctx, h.Env.DB.Read, actor(c), access.ManageWebhooks, slug); err != nil {
		return access.Project{}, err
	}
	return access.Get(ctx, h.Env.DB.Read, slug)
}

func row(w Webhook) templates.WebhookRow {
	ev := strings.Join(w.EventTypes, ", ")
	if ev == "" {
		ev = "every event"
	}
	return templates.WebhookRow{ID: w.ID, URL: w.URL, Events: ev, Active: w.Active, Reason: w.DisabledReason}
}

// List shows the project's webhooks and the form that makes one.
func (h *Handlers) List(c echo.Context) error {
	return h.list(c, http.StatusOK, web.Form(c), nil)
}

func (h *Handlers) list(c echo.Context, status int, f templates.Form, set func(v *templates.WebhooksView)) error {
	p, err := h.project(c)
	if err != nil {
		return err
	}
	hs, err := List(c.Request().Context(), h.Env.DB.Read, p.Slug)
	if err != nil {
		return err
	}
	if web.WantsJSON(c) && set == nil && status == http.StatusOK {
		return c.JSON(status, map[string]any{"project": p.Slug, "webhooks": hs})
	}
	v := templates.WebhooksView{Slug: p.Slug, Name: p.Name, Create: f}
	for _, w := range hs {
		v.Rows = append(v.Rows, row(w))
	}
	if set != nil {
		set(&v)
	}
	return web.Render(c, status, templates.Webhooks(h.Env.Page(c, "Webhooks of "+p.Name, "projects"), v))
}

// Create makes a webhook and shows its secret once (201).
func (h *Handlers) Create(c echo.Context) error {
	// The command checks who may (403, like every command; 404 for a
	// project that does not exist).
	ctx := c.Request().Context()
	slug := c.Param("slug")
	if access.ValidSlug(slug) != nil {
		return errs.E(errs.NotFound, "There is no project %q, or you may not see it.", slug)
	}
	id, secret, err := h.Service.Create(ctx, actor(c), slug, c.FormValue("url"), c.FormValue("events"), c.FormValue("command_id"))
	if errs.Code(err) == errs.Invalid && !web.WantsJSON(c) {
		return h.list(c, http.StatusUnprocessableEntity, web.WithError(web.Form(c, "url", "events"), err), func(*templates.WebhooksView) {})
	}
	if err != nil {
		return err
	}
	if web.WantsJSON(c) {
		w, err := Get(ctx, h.Env.DB.Read, slug, id)
		if err != nil {
			return err
		}
		c.Response().Header().Set("Location", "/p/"+slug+"/webhooks/"+id)
		return c.JSON(http.StatusCreated, map[string]any{"webhook": w, "secret": secret})
	}
	return h.list(c, http.StatusCreated, web.Form(c), func(v *templates.WebhooksView) {
		v.NewID, v.NewSecret, v.Repeated = id, secret, secret == ""
	})
}

// Show is the webhook's page: its settings and delivery log.
func (h *Handlers) Show(c echo.Context) error {
	return h.show(c, http.StatusOK, nil)
}

func (h *Handlers) show(c echo.Context, status int, set func(v *templates.WebhookView)) error {
	ctx := c.Request().Context()
	p, err := h.project(c)
	if err != nil {
		return err
	}
	w, err := Get(ctx, h.Env.DB.Read, p.Slug, c.Param("id"))
	if err != nil {
		return err
	}
	ds, err := Deliveries(ctx, h.Env.DB.Read, w.ID, logSize)
	if err != nil {
		return err
	}
	if web.WantsJSON(c) && set == nil {
		return c.JSON(http.StatusOK, map[string]any{"webhook": w, "deliveries": ds})
	}
	v := templates.WebhookView{Slug: p.Slug, Name: p.Name, Hook: row(w), Change: web.Form(c), Toggle: web.Form(c), Redeliver: web.Form(c)}
	v.Change.Values["url"] = w.URL
	v.Change.Values["events"] = strings.Join(w.EventTypes, ", ")
	for _, d := range ds {
		v.Deliveries = append(v.Deliveries, templates.WebhookDelivery{Position: d.Position, Event: d.EventType, Attempt: d.Attempt,
			OK: d.OK, Code: d.Code, Error: d.Error, At: d.At, Redelivery: d.Redelivery})
	}
	if set != nil {
		set(&v)
	}
	return web.Render(c, status, templates.Webhook(h.Env.Page(c, "Webhook", "projects"), v))
}

func (h *Handlers) back(c echo.Context, msg string) error {
	if web.WantsJSON(c) {
		// A script gets the webhook as it now is (docs/api.md).
		w, err := Get(c.Request().Context(), h.Env.DB.Read, c.Param("slug"), c.Param("id"))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"webhook": w, "message": msg})
	}
	h.Env.Flash(c, msg)
	return web.Redirect(c, "/p/"+c.Param("slug")+"/webhooks/"+c.Param("id"))
}

// Change sets the webhook's address and event types.
func (h *Handlers) Change(c echo.Context) error {
	if _, err := h.project(c); err != nil {
		return err
	}
	err := h.Service.Change(c.Request().Context(), actor(c), c.Param("slug"), c.Param("id"), c.FormValue("url"), c.FormValue("events"), c.FormValue("command_id"))
	if errs.Code(err) == errs.Invalid && !web.WantsJSON(c) {
		f := web.WithError(web.Form(c, "url", "events"), err)
		return h.show(c, http.StatusUnprocessableEntity, func(v *templates.WebhookView) { v.Change = f })
	}
	if err != nil {
		return err
	}
	return h.back(c, "Webhook saved.")
}

// Toggle turns the webhook off (on=0) or on (on=1).
func (h *Handlers) Toggle(c echo.Context) error {
	if _, err := h.project(c); err != nil {
		return err
	}
	ctx, slug, id, cmd := c.Request().Context(), c.Param("slug"), c.Param("id"), c.FormValue("command_id")
	switch c.FormValue("on") {
	case "0":
		if err := h.Service.Disable(ctx, actor(c), slug, id, cmd); err != nil {
			return err
		}
		return h.back(c, "Webhook turned off.")
	case "1":
		if err := h.Service.Enable(ctx, actor(c), slug, id, cmd); err != nil {
			return err
		}
		return h.back(c, "Webhook turned on; it sends what it missed first.")
	}
	return errs.Field("on", "on is 0 or 1")
}

// Redeliver asks for one event to be sent again; it must be one the
// webhook was sent before.
func (h *Handlers) Redeliver(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := h.project(c)
	if err != nil {
		return err
	}
	w, err := Get(ctx, h.Env.DB.Read, p.Slug, c.Param("id"))
	if err != nil {
		return err
	}
	pos, perr := strconv.ParseInt(c.FormValue("position"), 10, 64)
	ok := false
	if perr == nil {
		if ok, err = Delivered(ctx, h.Env.DB.Read, w.ID, pos); err != nil {
			return err
		}
	}
	if !ok && web.WantsJSON(c) {
		return errs.Field("position", "Only an event this webhook was sent before may be sent again.")
	}
	if !ok {
		return h.show(c, http.StatusUnprocessableEntity, func(v *templates.WebhookView) {
			v.Redeliver.Message = "Only an event this webhook was sent before may be sent again."
		})
	}
	if err := Redeliver(ctx, h.Env.DB, w.ID, pos); err != nil {
		return err
	}
	return h.back(c, "The event will be sent again in a moment.")
}

// Checker is CheckURL with the site's setting, for Service.Check.
func Checker(allowPrivate bool) func(ctx context.Context, raw string) error {
	return func(ctx context.Context, raw string) error { return CheckURL(ctx, raw, allowPrivate) }
}
