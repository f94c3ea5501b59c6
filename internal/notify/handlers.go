package notify

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/web"
	"braid/templates"
)

// Handlers serve the inbox and the Watch/Unwatch buttons. Every one of them
// reads or changes only the signed-in person's own inbox.
type Handlers struct {
	Env     *web.Env
	Service *Service
	MailOn  bool // digests are sent (serve --smtp-url)
}

const inboxPage = 50

func me(c echo.Context) string {
	u, _ := web.CurrentUser(c.Request().Context())
	return u.ID
}

// Inbox shows the signed-in person's notifications, newest first
// (?page=N), with the forms that mark them read and set the digest address.
func (h *Handlers) Inbox(c echo.Context) error {
	return h.inbox(c, http.StatusOK, nil)
}

// inbox draws the page at status; set, when given, puts a form's problem
// on it.
func (h *Handlers) inbox(c echo.Context, status int, set func(v *templates.InboxView)) error {
	ctx := c.Request().Context()
	user := me(c)
	page := 1
	if s := c.QueryParam("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1_000_000 {
			return errs.Field("page", "page is a whole number from 1; got %q", s)
		}
		page = n
	}
	items, total, err := Inbox(ctx, h.Env.DB.Read, user, inboxPage, (page-1)*inboxPage)
	if err != nil {
		return err
	}
	unread, err := Unread(ctx, h.Env.DB.Read, user)
	if err != nil {
		return err
	}
	email, err := Email(ctx, h.Env.DB.Read, user)
	if err != nil {
		return err
	}
	var upTo int64
	if len(items) > 0 && page == 1 {
		upTo = items[0].Position
	}
	if upTo == 0 {
		upTo = h.Env.Writer.Head().Position
	}
	if web.WantsJSON(c) && set == nil {
		return c.JSON(status, map[string]any{"notifications": items, "unread": unread, "total": total, "page": page,
			"up_to": upTo, "email": email, "mail": h.MailOn, "csrf": web.CSRF(c), "command_id": events.NewID()})
	}
	v := templates.InboxView{Unread: unread, Total: total, Page: page, Pages: (total + inboxPage - 1) / inboxPage,
		UpTo: upTo, ReadForm: web.Form(c), EmailForm: web.Form(c), Email: email, MailOn: h.MailOn}
	v.EmailForm.Values["email"] = email
	ids := make([]string, 0, 2*len(items))
	for _, it := range items {
		ids = append(ids, it.Actor, it.Subject)
	}
	who, err := h.Env.People(c.Request().Context(), ids...)
	if err != nil {
		return err
	}
	name := func(u string) string {
		if p := who(u); p.Name != "" {
			return p.Name
		}
		return u
	}
	for _, it := range items {
		words, ref := it.words(user, name), "#"+strconv.FormatInt(it.TicketID, 10)+" "+it.Title
		if it.Kind == "webhook_disabled" {
			words, ref = it.Text, "its delivery log"
		}
		v.Items = append(v.Items, templates.InboxItem{Position: it.Position, Words: words,
			Ref: ref, Link: it.Link, When: it.OccurredAt,
			Read: it.Read, Form: web.Form(c)})
	}
	if set != nil {
		set(&v)
	}
	p := h.Env.Page(c, "Inbox", "inbox")
	return web.Render(c, status, templates.InboxPage(p, v))
}

// Badge draws the header's inbox link alone, for htmx to refresh.
func (h *Handlers) Badge(c echo.Context) error {
	p := h.Env.Page(c, "Inbox", c.QueryParam("nav"))
	if web.WantsJSON(c) {
		return c.JSON(http.StatusOK, map[string]any{"unread": p.Unread})
	}
	return web.Render(c, http.StatusOK, templates.InboxLink(p))
}

// formError answers a refused inbox form: JSON, or the page again with the
// message (422 beside the field, 404 for a notification that is not yours).
func (h *Handlers) formError(c echo.Context, err error, set func(v *templates.InboxView)) error {
	switch errs.Code(err) {
	case errs.Invalid, errs.Conflict, errs.NotFound:
		if web.WantsJSON(c) {
			return err
		}
		return h.inbox(c, web.Status(errs.Code(err)), set)
	}
	return err
}

// Read marks notifications read: fields position (repeatable) or up_to.
func (h *Handlers) Read(c echo.Context) error {
	form, _ := c.FormParams()
	var upTo int64
	if s := form.Get("up_to"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return h.formError(c, errs.Field("up_to", "up_to is a log position: a whole number from 1; got %q.", s), readProblem)
		}
		upTo = n
	}
	var positions []int64
	for _, s := range form["position"] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return h.formError(c, errs.Field("position", "position is a log position: a whole number from 1; got %q.", s), readProblem)
		}
		positions = append(positions, n)
	}
	err := h.Service.MarkRead(c.Request().Context(), me(c), upTo, positions, c.FormValue("command_id"))
	if err != nil {
		return h.formError(c, err, func(v *templates.InboxView) { v.ReadForm = web.WithError(v.ReadForm, err) })
	}
	return web.Redirect(c, "/inbox")
}

func readProblem(v *templates.InboxView) {}

// SetEmail sets (or clears) the digest address: field email.
func (h *Handlers) SetEmail(c echo.Context) error {
	email := c.FormValue("email")
	err := h.Service.SetEmail(c.Request().Context(), me(c), email, c.FormValue("command_id"))
	if err != nil {
		return h.formError(c, err, func(v *templates.InboxView) {
			v.EmailForm = web.WithError(v.EmailForm, err)
			v.EmailForm.Values["email"] = email
		})
	}
	if strings.TrimSpace(email) == "" {
		h.Env.Flash(c, "No more digests by email.")
	} else {
		h.Env.Flash(c, "Digests go to "+strings.TrimSpace(email)+".")
	}
	return web.Redirect(c, "/inbox")
}

// Watch and Unwatch are the ticket page's buttons.
func (h *Handlers) Watch(c echo.Context) error { return h.watch(c, true) }

// Unwatch stops the signed-in person watching the ticket.
func (h *Handlers) Unwatch(c echo.Context) error { return h.watch(c, false) }

func (h *Handlers) watch(c echo.Context, on bool) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return errs.E(errs.NotFound, "There is no such page: %q is not a number.", c.Param("id"))
	}
	ctx, cmd := c.Request().Context(), c.FormValue("command_id")
	if on {
		err = h.Service.Watch(ctx, me(c), id, cmd)
	} else {
		err = h.Service.Unwatch(ctx, me(c), id, cmd)
	}
	if err != nil {
		return err
	}
	if on {
		h.Env.Flash(c, "You watch this ticket: changes by others appear in your inbox.")
	} else {
		h.Env.Flash(c, "You no longer watch this ticket.")
	}
	return web.Redirect(c, "/tickets/"+strconv.FormatInt(id, 10))
}

// Private reports the event types whose payload is personal: only the
// person it belongs to sees it on the activity pages (see web.Env.Private).
func Private(eventType string) bool { return eventType == "email_set" }
