package auth

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/web"
	"braid/templates"
)

// The admin page: people and their roles, invitations, the registration
// mode. Every handler checks the role here, before reading the form, and
// every command checks it again inside the writer's transaction.

// requireAdminHTTP answers 403 to anyone signed in who is not an admin.
func (h *Handlers) requireAdminHTTP(c echo.Context) (string, error) {
	who := me(c)
	ok, err := IsAdmin(c.Request().Context(), h.Env.DB.Read, who)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errs.E(errs.Forbidden, "Only a site admin may see or use the admin page.")
	}
	return who, nil
}

// Admin shows the admin page.
func (h *Handlers) Admin(c echo.Context) error {
	if _, err := h.requireAdminHTTP(c); err != nil {
		return err
	}
	return h.admin(c, http.StatusOK, nil)
}

func (h *Handlers) admin(c echo.Context, status int, set func(v *templates.AdminView)) error {
	ctx := c.Request().Context()
	v, err := h.adminView(ctx)
	if err != nil {
		return err
	}
	v.Me = me(c)
	if web.WantsJSON(c) {
		return c.JSON(status, adminJSON(v))
	}
	if set != nil {
		set(&v)
	}
	return web.Render(c, status, templates.Admin(h.Env.Page(c, "Administration", "admin"), v))
}

func (h *Handlers) adminView(ctx context.Context) (templates.AdminView, error) {
	q := h.Env.DB.Read
	v := templates.AdminView{
		Invite:   templates.Form{CommandID: events.NewID(), Values: map[string]string{"role": "member", "expires_in": "72"}},
		ModeForm: templates.Form{CommandID: events.NewID()},
		Rename:   templates.Form{CommandID: events.NewID()},
		Claim:    templates.Form{CommandID: events.NewID()},
		ClaimOn:  h.Claim != nil,
	}
	people, err := All(ctx, q)
	if err != nil {
		return v, err
	}
	roles, err := Roles(ctx, q)
	if err != nil {
		return v, err
	}
	invs, err := Invitations(ctx, q)
	if err != nil {
		return v, err
	}
	stored, err := StoredMode(ctx, q)
	if err != nil {
		return v, err
	}
	mode, err := EffectiveMode(ctx, q, h.Registration)
	if err != nil {
		return v, err
	}
	ids := []string{stored.SetBy}
	for _, i := range invs {
		ids = append(ids, i.CreatedBy, i.ClosedBy)
	}
	names, err := Names(ctx, q, ids)
	if err != nil {
		return v, err
	}
	who := func(id string) templates.Person {
		if p, ok := names[id]; ok {
			return p
		}
		return templates.Person{ID: id, Username: id}
	}
	for _, p := range people {
		admin := false
		for _, r := range roles[p.ID] {
			admin = admin || r == RoleAdmin
		}
		if admin {
			v.Admins++
		}
		v.People = append(v.People, templates.AdminPerson{Who: templates.Person{ID: p.ID, Username: p.Username, Name: p.DisplayName},
			RegisteredAt: p.RegisteredAt, Admin: admin, CommandID: events.NewID()})
	}
	now := time.Now()
	for _, i := range invs {
		status := i.State
		if status == "pending" && i.Expired(now) {
			status = "expired"
		}
		v.Invitations = append(v.Invitations, templates.AdminInvitation{ID: i.ID, Role: i.Role, Note: i.Note,
			CreatedBy: who(i.CreatedBy), CreatedAt: i.CreatedAt, ExpiresAt: i.ExpiresAt, Status: status, ClosedBy: who(i.ClosedBy), CommandID: events.NewID()})
	}
	v.Mode, v.Stored, v.StoredBy, v.Override = string(mode), string(stored.Mode), who(stored.SetBy), h.Registration != ""
	return v, nil
}

// CreateInvitation makes an invitation link and shows it once, on the
// page this POST answers (201): the secret is never put in the session,
// a flash or a redirect.
func (h *Handlers) CreateInvitation(c echo.Context) error {
	who, err := h.requireAdminHTTP(c)
	if err != nil {
		return err
	}
	f := web.Form(c, "role", "expires_in", "note")
	hours, perr := strconv.Atoi(strings.TrimSpace(c.FormValue("expires_in")))
	if perr != nil {
		hours = 0 // refused below, beside the field
	}
	inv, err := h.Service.CreateInvitation(c.Request().Context(), who,
		Invite{Role: c.FormValue("role"), Note: c.FormValue("note"), ExpiresIn: hours}, c.FormValue("command_id"))
	if err != nil {
		if errs.Code(err) != errs.Invalid {
			return err
		}
		if web.WantsJSON(c) {
			return err // the JSON error table, the message beside the field
		}
		return h.admin(c, http.StatusUnprocessableEntity, func(v *templates.AdminView) { v.Invite = web.WithError(f, err) })
	}
	if web.WantsJSON(c) { // a script: the link once, as JSON (docs/api.md)
		link := ""
		if inv.Token != "" {
			link = c.Scheme() + "://" + c.Request().Host + "/join/" + inv.Token
		}
		return c.JSON(http.StatusCreated, map[string]any{"id": inv.ID, "link": link, "repeated": inv.Repeated})
	}
	return h.admin(c, http.StatusCreated, func(v *templates.AdminView) {
		v.NewID, v.Repeated = inv.ID, inv.Repeated
		if inv.Token != "" {
			v.NewLink = c.Scheme() + "://" + c.Request().Host + "/join/" + inv.Token
		}
	})
}

// RevokeInvitation withdraws a pending invitation.
func (h *Handlers) RevokeInvitation(c echo.Context) error {
	who, err := h.requireAdminHTTP(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if err := h.Service.RevokeInvitation(c.Request().Context(), who, id, c.FormValue("command_id")); err != nil {
		return err
	}
	h.Env.Flash(c, fmt.Sprintf("Invitation %s was revoked: its link no longer works.", id))
	return web.Redirect(c, "/admin")
}

// SetRegistration sets the site's registration mode.
func (h *Handlers) SetRegistration(c echo.Context) error {
	who, err := h.requireAdminHTTP(c)
	if err != nil {
		return err
	}
	mode, err := ParseMode(c.FormValue("mode"))
	if err == nil {
		err = h.Service.SetMode(c.Request().Context(), who, mode, c.FormValue("command_id"))
	}
	if err != nil {
		if errs.Code(err) != errs.Invalid {
			return err
		}
		f := web.Form(c, "mode")
		if web.WantsJSON(c) {
			return err // the JSON error table, the message beside the field
		}
		return h.admin(c, http.StatusUnprocessableEntity, func(v *templates.AdminView) { v.ModeForm = web.WithError(f, err) })
	}
	msg := fmt.Sprintf("Registration is now %s.", mode)
	if h.Registration != "" {
		msg += fmt.Sprintf(" This process runs with serve --registration %s, which applies until it restarts.", h.Registration)
	}
	h.Env.Flash(c, msg)
	return web.Redirect(c, "/admin")
}

// SetRole grants or revokes the admin role (field action: grant or revoke).
func (h *Handlers) SetRole(c echo.Context) error {
	who, err := h.requireAdminHTTP(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	person := normalUsername(c.FormValue("person")) // a username, as the page and people type it
	id, err := IDByUsername(ctx, h.Env.DB.Read, person)
	if err != nil {
		return err
	}
	switch c.FormValue("action") {
	case "grant":
		err = h.Service.Grant(ctx, who, id, c.FormValue("command_id"))
	case "revoke":
		err = h.Service.Revoke(ctx, who, id, c.FormValue("command_id"))
	default:
		err = errs.E(errs.Invalid, "action must be grant or revoke")
	}
	if err != nil {
		return err
	}
	if c.FormValue("action") == "grant" {
		h.Env.Flash(c, fmt.Sprintf("%s is now a site admin.", person))
	} else {
		h.Env.Flash(c, fmt.Sprintf("%s is no longer a site admin.", person))
	}
	return web.Redirect(c, "/admin")
}

// AdminRename changes someone's username (fields person, the current
// username, and username, the new one): username_changed with the admin
// as actor. A bad or taken name re-shows the form with the message beside
// the field (422), appending nothing.
func (h *Handlers) AdminRename(c echo.Context) error {
	who, err := h.requireAdminHTTP(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	f := web.Form(c, "person", "username")
	old := normalUsername(c.FormValue("person"))
	id, err := IDByUsername(ctx, h.Env.DB.Read, old)
	if errs.Code(err) == errs.NotFound {
		err = errs.Field("person", "There is nobody called %q.", old)
	}
	if err == nil {
		err = h.Service.AdminRename(ctx, who, id, c.FormValue("username"), c.FormValue("command_id"))
	}
	if err != nil {
		if errs.Code(err) != errs.Invalid {
			return err
		}
		if web.WantsJSON(c) {
			return err // the JSON error table, the message beside the field
		}
		return h.admin(c, http.StatusUnprocessableEntity, func(v *templates.AdminView) { v.Rename = web.WithError(f, err) })
	}
	h.Env.Flash(c, fmt.Sprintf("%s is now %s. They sign in with the new username; %s stays reserved for them.", old, normalUsername(c.FormValue("username")), old))
	return web.Redirect(c, "/admin")
}

// adminJSON is the administration page for a script: people, invitations
// (never their secrets) and the registration mode.
func adminJSON(v templates.AdminView) map[string]any {
	people := make([]map[string]any, 0, len(v.People))
	for _, p := range v.People {
		people = append(people, map[string]any{"id": p.Who.ID, "username": p.Who.Username, "display_name": p.Who.Name,
			"registered_at": p.RegisteredAt, "admin": p.Admin})
	}
	invs := make([]map[string]any, 0, len(v.Invitations))
	for _, i := range v.Invitations {
		invs = append(invs, map[string]any{"id": i.ID, "role": i.Role, "note": i.Note, "status": i.Status,
			"created_by": i.CreatedBy.Username, "created_at": i.CreatedAt, "expires_at": i.ExpiresAt})
	}
	return map[string]any{"people": people, "invitations": invs,
		"registration": map[string]any{"mode": v.Mode, "stored": v.Stored, "set_by": v.StoredBy.Username, "fixed_at_start": v.Override}}
}

// AdminClaim says that a real person (field by) stands for a person
// imported from another tracker (field imported), both by username:
// person_claimed with the admin as actor (docs/import.md). A refusal
// re-shows the form with the message beside the field (422).
func (h *Handlers) AdminClaim(c echo.Context) error {
	who, err := h.requireAdminHTTP(c)
	if err != nil {
		return err
	}
	if h.Claim == nil {
		return errs.E(errs.NotFound, "There is no such page.")
	}
	ctx := c.Request().Context()
	f := web.Form(c, "imported", "by")
	var ids [2]string
	for i, field := range []string{"imported", "by"} {
		name := normalUsername(c.FormValue(field))
		if ids[i], err = IDByUsername(ctx, h.Env.DB.Read, name); errs.Code(err) == errs.NotFound {
			err = errs.Field(field, "There is nobody called %q.", name)
		}
		if err != nil {
			break
		}
	}
	if err == nil {
		err = h.Claim(ctx, who, ids[0], ids[1], c.FormValue("command_id"))
	}
	if err != nil {
		if errs.Code(err) != errs.Invalid && errs.Code(err) != errs.Conflict {
			return err
		}
		if web.WantsJSON(c) {
			return err
		}
		return h.admin(c, http.StatusUnprocessableEntity, func(v *templates.AdminView) { v.Claim = web.WithError(f, err) })
	}
	h.Env.Flash(c, fmt.Sprintf("%s's tickets and comments now show %s.", normalUsername(c.FormValue("imported")), normalUsername(c.FormValue("by"))))
	return web.Redirect(c, "/admin")
}
