package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/web"
	"braid/templates"
)

// Handlers serve registration, sign-in and sign-out.
type Handlers struct {
	Env     *web.Env
	Service *Service
	Limiter *Limiter
	// Registration overrides the site's registration mode for this
	// process (serve --registration), or "" for the one the log holds.
	Registration RegistrationMode
	// Describe puts other features' events in plain words on profiles.
	Describe Describer
	// Passkeys signs in with WebAuthn (passkeys.go); nil or without a
	// relying party when the site has no address to bind them to.
	Passkeys *Passkeys
	// Claim records that a real person stands for one imported from
	// another tracker (internal/importer); nil: no claim form.
	Claim func(ctx context.Context, actor, imported, by, cmdID string) error
}

// RegistrationMode says who may register.
type RegistrationMode string

// The registration modes serve accepts.
const (
	RegistrationOpen   RegistrationMode = "open"
	RegistrationClosed RegistrationMode = "closed"
)

const registrationClosed = "Registration is closed on this site: ask the person who runs it for an account."

// refusal says why registration without an invitation is refused now, or
// "" when it is not.
func (h *Handlers) refusal(ctx context.Context) (string, error) {
	mode, err := EffectiveMode(ctx, h.Env.DB.Read, h.Registration)
	if err != nil {
		return "", err
	}
	switch mode {
	case RegistrationClosed:
		return registrationClosed, nil
	case RegistrationInvite:
		n, err := countPeople(ctx, h.Env.DB.Read)
		if err != nil || n == 0 { // the first person may always register
			return "", err
		}
		return registrationInvite, nil
	}
	return "", nil
}

// ShowRegister draws the registration form.
func (h *Handlers) ShowRegister(c echo.Context) error {
	msg, err := h.refusal(c.Request().Context())
	if err != nil {
		return err
	}
	if msg != "" {
		if web.WantsJSON(c) {
			return errs.E(errs.Forbidden, "%s", msg)
		}
		heading := "Registration is closed"
		if msg == registrationInvite {
			heading = "Registration is by invitation"
		}
		return web.Render(c, http.StatusOK, templates.Message(h.Env.Page(c, heading, "register"), heading, msg))
	}
	f := templates.Form{CommandID: events.NewID()}
	if web.WantsJSON(c) {
		return web.FormJSON(c, "/register", f)
	}
	return web.Render(c, http.StatusOK, templates.Register(h.Env.Page(c, "Register", "register"), f))
}

// DoRegister registers and signs in.
func (h *Handlers) DoRegister(c echo.Context) error {
	// A quick answer before the limiter and bcrypt; the writer decides
	// again, in the transaction that registers.
	msg, err := h.refusal(c.Request().Context())
	if err != nil {
		return err
	}
	if msg != "" {
		return errs.E(errs.Forbidden, "%s", msg)
	}
	return h.register(c, "", func(f templates.Form) templ.Component {
		return templates.Register(h.Env.Page(c, "Register", "register"), f)
	})
}

// ShowJoin draws the registration form of an invitation link: 404 when
// the link was used, revoked, has expired or never existed.
func (h *Handlers) ShowJoin(c echo.Context) error {
	token := c.Param("token")
	inv, err := h.Service.CheckInvitation(c.Request().Context(), token)
	if err != nil {
		return err
	}
	f := templates.Form{CommandID: events.NewID()}
	if web.WantsJSON(c) {
		return web.FormJSON(c, "/join/"+token, f)
	}
	f = h.withPasskeys(f)
	return web.Render(c, http.StatusOK, templates.Join(h.Env.Page(c, "Join", "register"), f, token, inv.Role))
}

// DoJoin registers through an invitation link and spends it, in one
// command, whatever the registration mode.
func (h *Handlers) DoJoin(c echo.Context) error {
	token := c.Param("token")
	inv, err := h.Service.CheckInvitation(c.Request().Context(), token)
	if err != nil {
		return err
	}
	return h.register(c, token, func(f templates.Form) templ.Component {
		return templates.Join(h.Env.Page(c, "Join", "register"), f, token, inv.Role)
	})
}

// register signs up from the form, through the invitation whose secret is
// token if any, and signs in.
func (h *Handlers) register(c echo.Context, token string, page func(templates.Form) templ.Component) error {
	// Every attempt counts, taken before the password is hashed.
	if _, wait, ok := h.Limiter.Reserve(registerLimits(c.RealIP())...); !ok {
		f := web.Form(c, "username", "display_name")
		f.Message = fmt.Sprintf("Too many registrations from your address. Try again in %s.", wait.Round(time.Second))
		retryAfter(c, wait)
		return web.Render(c, http.StatusTooManyRequests, page(f))
	}
	ctx := c.Request().Context()
	f := web.Form(c, "username", "display_name")
	f.CommandID = c.FormValue("command_id")
	r := Registration{Username: strings.TrimSpace(c.FormValue("username")), DisplayName: strings.TrimSpace(c.FormValue("display_name")),
		Password: c.FormValue("password"), Confirmation: c.FormValue("password_confirmation"), Invitation: token}
	id, repeated, err := h.Service.SignUp(ctx, r, f.CommandID)
	if err == nil && repeated {
		// The same registration sent again (a double click, a retry): sign
		// in only whoever knows the password. A command_id is public.
		if _, aerr := h.Service.Authenticate(ctx, r.Username, r.Password); aerr != nil {
			if errs.Code(aerr) != errs.Invalid {
				return aerr
			}
			err = &errs.Error{Code: errs.Conflict, Message: "This username is already registered. Sign in instead.",
				Fields: map[string]string{"username": "Already registered; sign in instead."}}
		}
	}
	if err != nil {
		switch errs.Code(err) {
		case errs.Invalid, errs.Conflict:
		default:
			return err
		}
		f.CommandID = events.NewID()
		return web.Render(c, web.Status(errs.Code(err)), page(web.WithError(f, err)))
	}
	if err := h.signIn(c, id); err != nil {
		return err
	}
	msg := fmt.Sprintf("Welcome, %s. Your registration is event %s in the log.", r.Username, "user/"+id)
	if admin, err := IsAdmin(ctx, h.Env.DB.Read, id); err != nil {
		return err
	} else if admin && token == "" {
		msg += " You are the site's first person, so you are its admin. The admin page (/admin) invites others."
	} else if admin {
		msg += " Your invitation made you a site admin."
	}
	if h.Passkeys != nil && h.Passkeys.RP != nil {
		msg += " To sign in without your password next time, add a passkey on your profile."
	}
	h.Env.Flash(c, msg)
	return web.Redirect(c, "/tickets")
}

// ShowLogin draws the sign-in form.
func (h *Handlers) ShowLogin(c echo.Context) error {
	f := templates.Form{Values: map[string]string{"next": safeNext(c.QueryParam("next"))}}
	if web.WantsJSON(c) {
		return web.FormJSON(c, "/login", f)
	}
	return web.Render(c, http.StatusOK, templates.Login(h.Env.Page(c, "Sign in", "login"), h.withPasskeys(f)))
}

// DoLogin signs in. One attempt is taken from the sign-in limits before
// bcrypt runs, in one step with the check, and given back on success.
func (h *Handlers) DoLogin(c echo.Context) error {
	ctx := c.Request().Context()
	f := web.Form(c, "username")
	next := safeNext(c.QueryParam("next"))
	f.Values["next"] = next
	// Usernames are lowercase: "Alice" and "alice" are one name, and one
	// key of the limits.
	username := normalUsername(c.FormValue("username"))
	limits := signInLimits(username, c.RealIP())
	r, wait, ok := h.Limiter.Reserve(limits...)
	if !ok {
		f.Message = fmt.Sprintf("Too many failed sign-ins. Try again in %s.", wait.Round(time.Second))
		retryAfter(c, wait)
		return web.Render(c, http.StatusTooManyRequests, templates.Login(h.Env.Page(c, "Sign in", "login"), h.withPasskeys(f)))
	}
	id, err := h.Service.Authenticate(ctx, username, c.FormValue("password"))
	if err != nil {
		if errs.Code(err) != errs.Invalid {
			r.Cancel() // not a guess: the database failed
			return err
		}
		return web.Render(c, http.StatusUnprocessableEntity, templates.Login(h.Env.Page(c, "Sign in", "login"), h.withPasskeys(web.WithError(f, err))))
	}
	r.Cancel()
	h.Limiter.Forget(limits[0].Key) // this username from this address
	if err := h.signIn(c, id); err != nil {
		return err
	}
	if next == "" {
		next = "/tickets"
	}
	return web.Redirect(c, next)
}

// retryAfter tells clients when to try again, in whole seconds.
func retryAfter(c echo.Context, wait time.Duration) {
	c.Response().Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
}

func (h *Handlers) signIn(c echo.Context, id string) error {
	ctx := c.Request().Context()
	// A fresh session id and CSRF secret at sign-in: a token planted or
	// drawn before cannot ride along.
	if err := h.Env.Sessions.RenewToken(ctx); err != nil {
		return fmt.Errorf("renew session: %w", err)
	}
	epoch, err := Epoch(ctx, h.Env.DB.Read, id)
	if err != nil {
		return err
	}
	h.Env.Sessions.Put(ctx, "user", id)
	h.Env.Sessions.Put(ctx, "epoch", epoch)
	web.RotateCSRF(c)
	return nil
}

// Logout ends the session on the server and rotates the CSRF secret.
func (h *Handlers) Logout(c echo.Context) error {
	ctx := c.Request().Context()
	if err := h.Env.Sessions.Destroy(ctx); err != nil {
		return fmt.Errorf("destroy session: %w", err)
	}
	web.RotateCSRF(c)
	return web.Redirect(c, "/login")
}

// LoadUser puts the signed-in user, if any, in the request context.
func (h *Handlers) LoadUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		id := h.Env.Sessions.GetString(ctx, "user")
		if id == "" {
			return next(c)
		}
		u, epoch, err := lookupSession(ctx, h.Env.DB.Read, id)
		if err != nil {
			if errs.Code(err) == errs.NotFound {
				return next(c) // a session for a user no longer known
			}
			return err
		}
		if epoch != h.Env.Sessions.GetInt64(ctx, "epoch") {
			// Signed out elsewhere: a password change, a reset or "sign
			// out other sessions" raised the epoch after this sign-in.
			if err := h.Env.Sessions.Destroy(ctx); err != nil {
				return fmt.Errorf("destroy session: %w", err)
			}
			web.RotateCSRF(c)
			return next(c)
		}
		c.SetRequest(c.Request().WithContext(web.WithUser(ctx, web.User{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName})))
		return next(c)
	}
}

// RequireUser sends people who are not signed in to /login (303), with
// nothing done.
func RequireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, ok := web.CurrentUser(c.Request().Context()); ok {
			return next(c)
		}
		if (web.WantsJSON(c) && c.Request().Method == http.MethodGet) || web.JSONBody(c) || web.BearerHeader(c) {
			return errs.E(errs.Unauthorized, "sign in first")
		}
		target := "/login"
		if c.Request().Method == http.MethodGet {
			target += "?next=" + url.QueryEscape(c.Request().URL.RequestURI())
		}
		return web.Redirect(c, target)
	}
}

// safeNext keeps a return path only if it is a path (and query) on this
// site, as a browser would read it: no scheme or host, no control
// characters or backslashes (browsers drop tabs and newlines and read a
// backslash as a slash, so "/\t/evil" and "/\\evil" both mean "//evil"),
// and no "//" even once percent-decoded. Anything else is "".
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || !strings.HasPrefix(next, "/") || !plainPath(next) {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return ""
	}
	if !strings.HasPrefix(u.Path, "/") || !plainPath(u.Path) || strings.Contains(u.Path, "//") {
		return ""
	}
	out := u.EscapedPath()
	if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") {
		return ""
	}
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out
}

// plainPath reports whether s has no control characters and no backslash.
func plainPath(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\\' || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// lookupSession reads a signed-in person's name and session epoch in one
// query.
func lookupSession(ctx context.Context, q events.Querier, id string) (User, int64, error) {
	u := User{ID: id}
	var epoch int64
	err := q.QueryRowContext(ctx, `SELECT u.username, u.display_name, u.registered_at, COALESCE(e.epoch, 0)
		FROM users u LEFT JOIN session_epochs e ON e.user_id = u.id WHERE u.id = ?`, id).Scan(&u.Username, &u.DisplayName, &u.RegisteredAt, &epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return u, 0, errs.E(errs.NotFound, "there is no user called %s", id)
	}
	if err != nil {
		return u, 0, fmt.Errorf("look up user %s: %w", id, err)
	}
	return u, epoch, nil
}
