package auth

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/web"
	"braid/templates"
)

// activitySize is how many of a person's events their profile lists.
const activitySize = 20

// words says what each of the people's own events did.
var words = map[string]string{
	"user_registered":       "registered",
	"display_name_changed":  "changed their display name",
	"password_changed":      "changed their password",
	"password_reset":        "had their password reset by an operator's link",
	"role_granted":          "site admin role granted",
	"role_revoked":          "site admin role revoked",
	"registration_mode_set": "set the site's registration mode",
	"invitation_created":    "created an invitation",
	"invitation_used":       "joined through an invitation",
	"invitation_revoked":    "revoked an invitation",
	"passkey_added":         "added a passkey",
	"passkey_removed":       "removed a passkey",
	"username_changed":      "changed their username",
}

// Describer puts events of other features in plain words, keyed by
// position (tickets.Describe).
type Describer func(ctx context.Context, q events.Querier, evs []events.Event) (map[int64]templates.Activity, error)

// me is the signed-in person's id.
func me(c echo.Context) string {
	u, _ := web.CurrentUser(c.Request().Context())
	return u.ID
}

// myPage is the signed-in person's profile.
func myPage(c echo.Context) string {
	u, _ := web.CurrentUser(c.Request().Context())
	return "/people/" + u.Username
}

// Profile shows a person: display name, username, when they registered,
// their last events in plain words and, on one's own, the account forms.
// The URL names the current username; a former one is not found (404):
// it stays reserved for the person, but is not a way to find them.
func (h *Handlers) Profile(c echo.Context) error {
	id, err := IDByUsername(c.Request().Context(), h.Env.DB.Read, c.Param("username"))
	if err != nil {
		return err
	}
	return h.profile(c, id, http.StatusOK, nil)
}

// profile draws the page of the person with this id; set fills a form's
// answer on one's own.
func (h *Handlers) profile(c echo.Context, id string, status int, set func(v *templates.ProfileView)) error {
	ctx := c.Request().Context()
	u, err := Lookup(ctx, h.Env.DB.Read, id)
	if err != nil {
		return err
	}
	// Their recent activity, as far as the reader may read it: reads
	// follow roles, so events of projects hidden from the reader are left out.
	scope, err := access.ScopeOf(ctx, h.Env.DB.Read, me(c))
	if err != nil {
		return err
	}
	evs, err := access.EventsWhere(ctx, h.Env.DB.Read, scope, id, 0, activitySize)
	if err != nil {
		return err
	}
	if web.WantsJSON(c) && set == nil {
		type item struct {
			Position int64  `json:"position"`
			Type     string `json:"event_type"`
			At       string `json:"occurred_at"`
		}
		out := make([]item, len(evs))
		for i, e := range evs {
			out[i] = item{e.Position, e.Type, e.OccurredAt}
		}
		return c.JSON(http.StatusOK, map[string]any{"user": u, "activity": out})
	}
	other := map[int64]templates.Activity{}
	if h.Describe != nil {
		if other, err = h.Describe(ctx, h.Env.DB.Read, evs); err != nil {
			return err
		}
	}
	v := templates.ProfileView{Person: templates.Person{ID: u.ID, Username: u.Username, Name: u.DisplayName}, RegisteredAt: u.RegisteredAt,
		Own: id == me(c), NameForm: web.Form(c), PasswordForm: web.Form(c), SessionsForm: web.Form(c), UsernameForm: web.Form(c)}
	v.NameForm.Values["display_name"] = u.DisplayName
	if v.Own {
		has, err := HasPassword(ctx, h.Env.DB.Read, id)
		if err != nil {
			return err
		}
		v.NoPassword = !has
		if v.Passkeys, err = h.passkeysView(c, id); err != nil {
			return err
		}
		if v.Tokens, err = h.tokensView(c, id); err != nil {
			return err
		}
	}
	v.UsernameForm.Values["username"] = u.Username
	for _, e := range evs {
		a, ok := other[e.Position]
		if !ok {
			w, known := words[e.Type]
			if !known {
				w = "changed something"
			}
			a = templates.Activity{Words: w, At: e.OccurredAt}
		}
		v.Activity = append(v.Activity, a)
	}
	if set != nil {
		set(&v)
	}
	return web.Render(c, status, templates.Profile(h.Env.Page(c, u.DisplayName, "profile"), v))
}

// ownProfile answers a form posted from one's own profile: a redirect
// back, or the page again with the form's problem.
func (h *Handlers) ownProfile(c echo.Context, err error, set func(v *templates.ProfileView, err error)) error {
	switch errs.Code(err) {
	case "":
		return web.Redirect(c, myPage(c))
	case errs.Invalid, errs.Conflict, errs.NotFound:
		if web.WantsJSON(c) {
			return err
		}
		return h.profile(c, me(c), web.Status(errs.Code(err)), func(v *templates.ProfileView) { set(v, err) })
	}
	return err
}

// Rename changes the signed-in person's display name.
func (h *Handlers) Rename(c echo.Context) error {
	f := web.Form(c, "display_name")
	err := h.Service.Rename(c.Request().Context(), me(c), f.V("display_name"), c.FormValue("command_id"))
	if err == nil {
		h.Env.Flash(c, "Display name changed.")
	}
	return h.ownProfile(c, err, func(v *templates.ProfileView, err error) { v.NameForm = web.WithError(f, err) })
}

// ChangeUsername renames the signed-in person, who re-enters their
// password (one attempt of the sign-in limits, as for a password change).
func (h *Handlers) ChangeUsername(c echo.Context) error {
	ctx := c.Request().Context()
	cur, _ := web.CurrentUser(ctx)
	f := web.Form(c, "username")
	limits := signInLimits(cur.Username, c.RealIP())
	r, wait, ok := h.Limiter.Reserve(limits...)
	if !ok {
		retryAfter(c, wait)
		err := &errs.Error{Code: errs.Invalid, Message: fmt.Sprintf("Too many wrong passwords. Try again in %s.", wait.Round(time.Second))}
		if web.WantsJSON(c) {
			return echo.NewHTTPError(http.StatusTooManyRequests, err.Message)
		}
		return h.profile(c, cur.ID, http.StatusTooManyRequests, func(v *templates.ProfileView) { v.UsernameForm = web.WithError(f, err) })
	}
	err := h.Service.ChangeUsername(ctx, cur.ID, cur.ID, f.V("username"), c.FormValue("current_password"), c.FormValue("command_id"))
	if errs.Fields(err)["current_password"] == "" {
		r.Cancel() // only a wrong current password is a guess
	}
	if err == nil {
		u, lerr := Lookup(ctx, h.Env.DB.Read, cur.ID)
		if lerr != nil {
			return lerr
		}
		h.Env.Flash(c, fmt.Sprintf("Your username is now %s: sign in with it from now on. The old one stays reserved for you.", u.Username))
		return web.Redirect(c, "/people/"+u.Username)
	}
	return h.ownProfile(c, err, func(v *templates.ProfileView, err error) { v.UsernameForm = web.WithError(f, err) })
}

// ChangePassword checks the current password (one attempt of the sign-in
// limits, so the form cannot be used to guess it), sets the new one and
// signs out every other session; this one goes on under a fresh token.
func (h *Handlers) ChangePassword(c echo.Context) error {
	ctx := c.Request().Context()
	user := me(c)
	cur, _ := web.CurrentUser(ctx)
	f := web.Form(c)
	limits := signInLimits(cur.Username, c.RealIP())
	r, wait, ok := h.Limiter.Reserve(limits...)
	if !ok {
		retryAfter(c, wait)
		err := &errs.Error{Code: errs.Invalid, Message: fmt.Sprintf("Too many wrong passwords. Try again in %s.", wait.Round(time.Second))}
		if web.WantsJSON(c) {
			return echo.NewHTTPError(http.StatusTooManyRequests, err.Message)
		}
		return h.profile(c, user, http.StatusTooManyRequests, func(v *templates.ProfileView) { v.PasswordForm = web.WithError(f, err) })
	}
	epoch, err := h.Service.ChangePassword(ctx, user, c.FormValue("current_password"), c.FormValue("new_password"),
		c.FormValue("new_password_confirmation"), c.FormValue("command_id"))
	if errs.Fields(err)["current_password"] == "" {
		r.Cancel() // only a wrong current password is a guess
	}
	if err == nil {
		if err := h.renew(c, user, epoch); err != nil {
			return err
		}
		if c.FormValue("current_password") == "" {
			h.Env.Flash(c, "Password set. You can sign in with it or with your passkeys; every other session of yours is signed out.")
		} else {
			h.Env.Flash(c, "Password changed. Every other session of yours is signed out.")
		}
	}
	return h.ownProfile(c, err, func(v *templates.ProfileView, err error) { v.PasswordForm = web.WithError(f, err) })
}

// SignOutOthers signs out every session of the signed-in person but this
// one.
func (h *Handlers) SignOutOthers(c echo.Context) error {
	user := me(c)
	epoch, err := h.Service.SignOutOthers(c.Request().Context(), user)
	if err != nil {
		return err
	}
	if err := h.renew(c, user, epoch); err != nil {
		return err
	}
	h.Env.Flash(c, "Every other session of yours is signed out.")
	return web.Redirect(c, myPage(c))
}

// renew gives this browser a fresh session under the new epoch.
func (h *Handlers) renew(c echo.Context, user string, epoch int64) error {
	ctx := c.Request().Context()
	if err := h.Env.Sessions.RenewToken(ctx); err != nil {
		return fmt.Errorf("renew session: %w", err)
	}
	h.Env.Sessions.Put(ctx, "user", user)
	h.Env.Sessions.Put(ctx, "epoch", epoch)
	web.RotateCSRF(c)
	return nil
}

// ShowReset draws the form a one-time reset link opens.
func (h *Handlers) ShowReset(c echo.Context) error {
	user, err := h.resetUsername(c.Request().Context(), c.Param("token"))
	if err != nil {
		return err
	}
	f := web.Form(c)
	if web.WantsJSON(c) {
		return web.FormJSON(c, "/reset/"+c.Param("token"), f)
	}
	return web.Render(c, http.StatusOK, templates.Reset(h.Env.Page(c, "Choose a new password", "login"),
		templates.ResetView{Token: c.Param("token"), Username: user, Form: f}))
}

// DoReset sets the new password, spends the link and signs out every
// session of that person (this browser too: they sign in again).
func (h *Handlers) DoReset(c echo.Context) error {
	ctx := c.Request().Context()
	token := c.Param("token")
	f := web.Form(c)
	user, err := h.Service.Reset(ctx, token, c.FormValue("new_password"), c.FormValue("new_password_confirmation"), c.FormValue("command_id"))
	if errs.Code(err) == errs.Invalid && !web.WantsJSON(c) {
		u, _ := h.resetUsername(ctx, token)
		return web.Render(c, http.StatusUnprocessableEntity, templates.Reset(h.Env.Page(c, "Choose a new password", "login"),
			templates.ResetView{Token: token, Username: u, Form: web.WithError(f, err)}))
	}
	if err != nil {
		return err
	}
	if err := h.Env.Sessions.Destroy(ctx); err != nil {
		return fmt.Errorf("destroy session: %w", err)
	}
	web.RotateCSRF(c)
	if u, err := Lookup(ctx, h.Env.DB.Read, user); err == nil {
		h.Limiter.Forget(signInLimits(u.Username, c.RealIP())[0].Key)
	}
	h.Env.Flash(c, "Your password is set. Sign in with it; every session that was signed in is signed out.")
	return web.Redirect(c, "/login")
}

// resetUsername returns the username of the person a reset link is for.
func (h *Handlers) resetUsername(ctx context.Context, token string) (string, error) {
	id, err := h.Service.CheckReset(ctx, token)
	if err != nil {
		return "", err
	}
	u, err := Lookup(ctx, h.Env.DB.Read, id)
	if err != nil {
		return "", err
	}
	return u.Username, nil
}
