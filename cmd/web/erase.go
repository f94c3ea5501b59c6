package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"braid/internal/access"
	"braid/internal/auth"
	"braid/internal/erase"
	"braid/internal/errs"
	"braid/internal/web"
	"braid/templates"
)

// eraseCmd is `web erase`: erase one comment, one ticket's text or
// everything a person wrote from a braid v2 log (docs/privacy.md), with
// the site stopped (it takes the database's lock, as serve does).
func eraseCmd(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "erase", "erase --db PATH (--comment TICKET/COMMENT | --ticket N [--with-comments] | --person USERNAME|p_ID) --reason TEXT [--as ADMIN_USERNAME]")
	comment := fs.String("comment", "", "erase one comment, named TICKET/COMMENT (e.g. 12/3)")
	ticket := fs.String("ticket", "", "erase one ticket's title and description")
	withComments := fs.Bool("with-comments", false, "with --ticket: erase its comments too")
	person := fs.String("person", "", "erase everything a person wrote, and their names (a username or p_ id)")
	reason := fs.String("reason", "", "why (kept in the log: no personal data), up to 200 characters")
	as := fs.String("as", "", "the site admin erasing (default: the operator, actor system)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fail(exitFailed, "unexpected argument %q", fs.Arg(0))
	}
	var r erase.Request
	n := 0
	for _, s := range []struct{ scope, v string }{{erase.Comment, *comment}, {erase.Ticket, *ticket}, {erase.Person, *person}} {
		if s.v != "" {
			r.Scope, r.Target = s.scope, s.v
			n++
		}
	}
	if n != 1 {
		return fail(exitFailed, "name exactly one of --comment, --ticket or --person")
	}
	r.WithComments, r.Reason = *withComments, *reason
	if err := r.Validate(); err != nil {
		return fail(exitFailed, "%s", eraseLine(err))
	}
	if err := requireDB(*dbPath); err != nil {
		return err
	}
	unlock, err := lockDB(*dbPath)
	if err != nil {
		return fail(exitFailed, "%v (stop it first, or use the admin page at /admin/erase)", err)
	}
	defer unlock()
	a, err := openApp(ctx, *dbPath, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	actor := auth.System
	if *as != "" {
		if actor, err = auth.IDByUsername(ctx, a.db.Read, *as); err != nil {
			return fail(exitFailed, "--as: %s", errMessage(err))
		}
	}
	svc := &erase.Service{DB: a.db, Writer: a.writer, Types: a.types.erase}
	res, err := svc.Erase(ctx, actor, r, "")
	if err != nil {
		if errs.Code(err) == errs.Internal {
			return fail(exitFailed, "%v", err)
		}
		return fail(exitFailed, "%s", eraseLine(err))
	}
	fmt.Fprintf(e.stdout, "erased %s %s: %s, by %s as %s; event at position %d\n",
		res.Scope, res.Target, res.Describe(), actorName(*as), res.ByRole, res.Position)
	for _, x := range res.Positions {
		fmt.Fprintf(e.stdout, "  position %d  %s  %s\n", x.Position, x.Type, x.Aggregate)
	}
	if len(res.Tickets) > 0 {
		fmt.Fprintf(e.stdout, "tickets now showing the erasure: %v\n", res.Tickets)
	}
	if res.CheckpointErr != nil {
		fmt.Fprintf(e.stderr, "web erase: warning: %v; the old bytes leave the WAL at the next checkpoint\n", res.CheckpointErr)
	}
	return nil
}

func actorName(as string) string {
	if as == "" {
		return "the operator"
	}
	return as
}

// eraseLine is an error's message with the messages of its fields, on one
// line, for a CLI.
func eraseLine(err error) string {
	msg := errMessage(err)
	f := errs.Fields(err)
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		msg += " " + k + ": " + f[k]
	}
	return strings.ReplaceAll(msg, "\n", " ")
}

// eraseHandlers serve the admin's erase page (/admin/erase) and an
// author's "Delete permanently (erase)" on their own comment.
type eraseHandlers struct {
	env *web.Env
	svc *erase.Service
}

func (h *eraseHandlers) actor(c echo.Context) string {
	u, _ := web.CurrentUser(c.Request().Context())
	return u.ID
}

var eraseFields = []string{"scope", "target", "with_comments", "reason"}

func eraseRequest(c echo.Context) erase.Request {
	wc := c.FormValue("with_comments")
	return erase.Request{Scope: c.FormValue("scope"), Target: c.FormValue("target"),
		WithComments: wc != "" && wc != "0" && wc != "false", Reason: c.FormValue("reason")}
}

func confirmed(c echo.Context) bool {
	switch c.FormValue("confirm") {
	case "yes", "true", "1":
		return true
	}
	return false
}

// Form shows the erase form: site admins only.
func (h *eraseHandlers) Form(c echo.Context) error {
	if err := access.Can(c.Request().Context(), h.env.DB.Read, h.actor(c), access.Erase, ""); err != nil {
		return err
	}
	f := web.Form(c, eraseFields...)
	if f.Values["scope"] == "" {
		f.Values["scope"] = erase.Comment
	}
	if web.WantsJSON(c) {
		return web.FormJSON(c, "/admin/erase", f)
	}
	return web.Render(c, http.StatusOK, templates.Erase(h.env.Page(c, "Erase", "admin"), templates.EraseView{Form: f}))
}

// Post shows what the form's erasure would erase, and erases it once
// confirmed (field confirm=yes).
func (h *eraseHandlers) Post(c echo.Context) error {
	ctx := c.Request().Context()
	who := h.actor(c)
	if err := access.Can(ctx, h.env.DB.Read, who, access.Erase, ""); err != nil {
		return err
	}
	f := web.Form(c, eraseFields...)
	if id := c.FormValue("command_id"); id != "" {
		f.CommandID = id
	}
	r := eraseRequest(c)
	reshow := func(err error) error {
		if errs.Code(err) != errs.Invalid {
			return err
		}
		if web.WantsJSON(c) {
			return err
		}
		return web.Render(c, http.StatusUnprocessableEntity, templates.Erase(h.env.Page(c, "Erase", "admin"), templates.EraseView{Form: web.WithError(f, err)}))
	}
	if !confirmed(c) {
		p, err := erase.Preview(ctx, h.env.DB.Read, r)
		if err != nil {
			return reshow(err)
		}
		if web.WantsJSON(c) {
			return c.JSON(http.StatusOK, map[string]any{"preview": planJSON(p.Erased), "confirm": "post again with confirm=yes to erase"})
		}
		return web.Render(c, http.StatusOK, templates.Erase(h.env.Page(c, "Erase?", "admin"), templates.EraseView{Form: f, Confirm: planView(p)}))
	}
	res, err := h.svc.Erase(ctx, who, r, c.FormValue("command_id"))
	if err != nil {
		return reshow(err)
	}
	if web.WantsJSON(c) {
		return c.JSON(http.StatusOK, resultJSON(res))
	}
	h.env.Flash(c, fmt.Sprintf("Erased %s. The log shows the erasure at position %d.", res.Describe(), res.Position))
	return web.Redirect(c, "/admin/erase")
}

// commentOf reads the comment of the path, 404 when there is none.
func (h *eraseHandlers) commentOf(c echo.Context) (ticket, id int64, author, body string, err error) {
	ticket, err1 := strconv.ParseInt(c.Param("id"), 10, 64)
	id, err2 := strconv.ParseInt(c.Param("cid"), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, "", "", errs.E(errs.NotFound, "There is no such comment.")
	}
	err = h.env.DB.Read.QueryRowContext(c.Request().Context(), `SELECT author, body FROM comments WHERE ticket_id = ? AND id = ?`, ticket, id).Scan(&author, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, "", "", errs.E(errs.NotFound, "Ticket #%d has no comment %d.", ticket, id)
	}
	return ticket, id, author, body, err
}

// ConfirmComment asks the author before their comment is erased.
func (h *eraseHandlers) ConfirmComment(c echo.Context) error {
	ticket, id, author, body, err := h.commentOf(c)
	if err != nil {
		return err
	}
	if author != h.actor(c) {
		return errs.E(errs.Forbidden, "Only its author may erase a comment here (site admins use /admin/erase).")
	}
	f := web.Form(c, "reason")
	if web.WantsJSON(c) {
		return web.FormJSON(c, fmt.Sprintf("/tickets/%d/comments/%d/erase", ticket, id), f)
	}
	return web.Render(c, http.StatusOK, templates.EraseComment(h.env.Page(c, "Erase comment?", "tickets"),
		templates.EraseCommentView{TicketID: ticket, CommentID: id, Body: body, Form: f}))
}

// EraseComment erases the author's own comment (the erase command checks
// again who may).
func (h *eraseHandlers) EraseComment(c echo.Context) error {
	ticket, id, _, body, err := h.commentOf(c)
	if err != nil {
		return err
	}
	reason := strings.TrimSpace(c.FormValue("reason"))
	if reason == "" {
		reason = "erased by its author"
	}
	r := erase.Request{Scope: erase.Comment, Target: fmt.Sprintf("%d/%d", ticket, id), Reason: reason}
	res, err := h.svc.Erase(c.Request().Context(), h.actor(c), r, c.FormValue("command_id"))
	if err != nil {
		if errs.Code(err) == errs.Invalid && !web.WantsJSON(c) {
			f := web.WithError(web.Form(c, "reason"), err)
			return web.Render(c, http.StatusUnprocessableEntity, templates.EraseComment(h.env.Page(c, "Erase comment?", "tickets"),
				templates.EraseCommentView{TicketID: ticket, CommentID: id, Body: body, Form: f}))
		}
		return err
	}
	if web.WantsJSON(c) {
		return c.JSON(http.StatusOK, resultJSON(res))
	}
	h.env.Flash(c, "Your comment was erased.")
	return web.Redirect(c, fmt.Sprintf("/tickets/%d", ticket))
}

func planView(p erase.Plan) *templates.ErasePlan {
	v := &templates.ErasePlan{Summary: p.Describe(), Tickets: p.Tickets}
	for _, x := range p.Positions {
		v.Items = append(v.Items, fmt.Sprintf("%s of %s (position %d)", x.Type, x.Aggregate, x.Position))
	}
	return v
}

func planJSON(d erase.Erased) map[string]any {
	pos := make([]map[string]any, 0, len(d.Positions))
	for _, x := range d.Positions {
		pos = append(pos, map[string]any{"position": x.Position, "type": x.Type, "aggregate": x.Aggregate})
	}
	tickets := d.Tickets
	if tickets == nil {
		tickets = []int64{}
	}
	return map[string]any{"scope": d.Scope, "target": d.Target, "positions": pos, "tickets": tickets}
}

func resultJSON(res erase.Result) map[string]any {
	m := planJSON(res.Erased)
	m["position"] = res.Position
	m["by_role"] = res.ByRole
	m["repeated"] = res.Repeated
	return m
}
