package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"

	"github.com/labstack/echo/v4"

	"braid/internal/errs"
	"braid/internal/web"
	"braid/templates"
)

// The session keys that hold a passkey ceremony between its challenge and
// its answer. Sessions live on the server (scs in SQLite): the browser
// holds only the session's id.
const (
	addCeremonyKey   = "passkey_add"
	loginCeremonyKey = "passkey_login"
)

// maxPasskeyBody caps the JSON an authenticator's answer comes in: an
// attestation is a few kilobytes.
const maxPasskeyBody = 64 << 10

var idHashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (h *Handlers) keepCeremony(ctx context.Context, key string, cer Ceremony) error {
	b, err := json.Marshal(cer)
	if err != nil {
		return fmt.Errorf("encode ceremony: %w", err)
	}
	h.Env.Sessions.Put(ctx, key, b)
	return nil
}

// takeCeremony takes the ceremony out of the session: whatever the answer,
// a challenge serves once.
func (h *Handlers) takeCeremony(ctx context.Context, key string) Ceremony {
	var cer Ceremony
	if b := h.Env.Sessions.PopBytes(ctx, key); len(b) > 0 {
		json.Unmarshal(b, &cer) // a zero ceremony is refused by the caller
	}
	return cer
}

func passkeyBody(c echo.Context) error {
	if c.Request().ContentLength > maxPasskeyBody {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "A passkey's answer is at most 64 KB.")
	}
	return nil
}

// PasskeyAddOptions starts adding a passkey to the signed-in person's
// account (POST /account/passkeys/options, form field name): the options
// for navigator.credentials.create, as JSON.
func (h *Handlers) PasskeyAddOptions(c echo.Context) error {
	ctx := c.Request().Context()
	opts, cer, err := h.Passkeys.BeginAdd(ctx, me(c), c.FormValue("name"))
	if err != nil {
		return err
	}
	if err := h.keepCeremony(ctx, addCeremonyKey, cer); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"publicKey": opts.Response, "csrf": web.CSRF(c)})
}

// PasskeyAdd finishes adding a passkey (POST /account/passkeys, the
// authenticator's answer as JSON, the command id in the query).
func (h *Handlers) PasskeyAdd(c echo.Context) error {
	if err := passkeyBody(c); err != nil {
		return err
	}
	ctx := c.Request().Context()
	cer := h.takeCeremony(ctx, addCeremonyKey)
	pk, err := h.Passkeys.FinishAdd(ctx, me(c), cer, c.Request(), c.QueryParam("command_id"))
	if err != nil {
		return err
	}
	h.Env.Flash(c, fmt.Sprintf("Passkey “%s” added. You can now sign in with it instead of your password.", pk.Name))
	return c.JSON(http.StatusOK, map[string]any{"passkey": pk, "redirect": myPage(c) + "#passkeys"})
}

// PasskeyRemove removes one of the signed-in person's passkeys (a form).
func (h *Handlers) PasskeyRemove(c echo.Context) error {
	id := c.Param("id")
	if !idHashRE.MatchString(id) {
		return errs.E(errs.NotFound, "You have no such passkey.")
	}
	name, err := h.Passkeys.Remove(c.Request().Context(), me(c), id, c.FormValue("command_id"))
	if err != nil {
		return err
	}
	h.Env.Flash(c, fmt.Sprintf("Passkey “%s” removed: it no longer signs you in.", name))
	return web.Redirect(c, myPage(c)+"#passkeys")
}

// PasskeyLoginOptions starts a passkey sign-in (POST /login/passkey/options):
// no username asked, the browser offers the passkeys it holds.
func (h *Handlers) PasskeyLoginOptions(c echo.Context) error {
	opts, cer, err := h.Passkeys.BeginLogin()
	if err != nil {
		return err
	}
	return h.visitorCeremony(c, loginCeremonyKey, cer, opts.Response)
}

// visitorCeremony keeps a ceremony's challenge for a visitor who may not
// be signed in and answers the browser its options. A visitor without a
// session gets one now, to keep the challenge in; the page's CSRF token
// was bound to no session, so the answer carries a fresh one.
func (h *Handlers) visitorCeremony(c echo.Context, key string, cer Ceremony, publicKey any) error {
	ctx := c.Request().Context()
	if h.Env.Sessions.Token(ctx) == "" {
		if err := h.Env.Sessions.RenewToken(ctx); err != nil {
			return fmt.Errorf("start session: %w", err)
		}
		web.RotateCSRF(c)
	}
	if err := h.keepCeremony(ctx, key, cer); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"publicKey": publicKey, "csrf": web.CSRF(c)})
}

// PasskeyLogin finishes a passkey sign-in (POST /login/passkey, the
// authenticator's answer as JSON). Failures count against the address's
// sign-in limit like wrong passwords.
func (h *Handlers) PasskeyLogin(c echo.Context) error {
	if err := passkeyBody(c); err != nil {
		return err
	}
	ctx := c.Request().Context()
	limits := []Limit{{KeyOf("passkey-addr", addrKey(c.RealIP())), signInPerAddr}}
	r, wait, ok := h.Limiter.Reserve(limits...)
	if !ok {
		retryAfter(c, wait)
		return errs.E(errs.TooMany, "Too many failed sign-ins. Try again in %s.", wait.Round(1e9))
	}
	cer := h.takeCeremony(ctx, loginCeremonyKey)
	id, err := h.Passkeys.FinishLogin(ctx, cer, c.Request())
	if err != nil {
		if code := errs.Code(err); code != errs.Unauthorized && code != errs.Invalid {
			r.Cancel() // not a guess: the site failed
		}
		return err
	}
	r.Cancel()
	if err := h.signIn(c, id); err != nil {
		return err
	}
	next := safeNext(c.QueryParam("next"))
	if next == "" {
		next = "/tickets"
	}
	out := map[string]any{"user": id, "redirect": next}
	if u, err := Lookup(ctx, h.Env.DB.Read, id); err == nil {
		out["username"] = u.Username
	}
	return c.JSON(http.StatusOK, out)
}

// withPasskeys marks the sign-in form to offer passkeys when the site has
// them.
func (h *Handlers) withPasskeys(f templates.Form) templates.Form {
	if h.Passkeys != nil && h.Passkeys.RP != nil {
		if f.Values == nil {
			f.Values = map[string]string{}
		}
		f.Values["passkeys"] = "on"
	}
	return f
}

// passkeysView fills the profile's passkey section for its owner.
func (h *Handlers) passkeysView(c echo.Context, user string) (templates.PasskeysView, error) {
	v := templates.PasskeysView{On: h.Passkeys != nil && h.Passkeys.RP != nil, Form: web.Form(c)}
	list, err := ListPasskeys(c.Request().Context(), h.Env.DB.Read, user)
	if err != nil {
		return v, err
	}
	for _, p := range list {
		v.List = append(v.List, templates.PasskeyRow{ID: p.IDHash, Name: p.Name, Created: p.Created, LastUsed: p.LastUsed})
	}
	return v, nil
}
