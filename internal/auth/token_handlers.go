package auth

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"braid/internal/errs"
	"braid/internal/web"
	"braid/templates"
)

// tokensView lists a person's tokens for their own profile.
func (h *Handlers) tokensView(c echo.Context, id string) (templates.TokensView, error) {
	ts, err := Tokens(c.Request().Context(), h.Env.DB.Read, id)
	if err != nil {
		return templates.TokensView{}, err
	}
	v := templates.TokensView{Form: web.Form(c)}
	for _, t := range ts {
		v.List = append(v.List, templates.TokenRow{ID: t.ID, Name: t.Name, Scopes: strings.Join(t.Scopes, ", "),
			Created: t.CreatedAt, Expires: t.ExpiresAt[:min(len(t.ExpiresAt), 10)], Revoked: t.RevokedAt})
	}
	return v, nil
}

// CreateToken makes a personal access token from the profile's form and
// shows its secret once (201, the profile page with the token on it).
func (h *Handlers) CreateToken(c echo.Context) error {
	ctx := c.Request().Context()
	f := web.Form(c, "name", "expires", "expires_date")
	expiry := f.V("expires")
	if d := strings.TrimSpace(f.V("expires_date")); d != "" {
		expiry = d
	}
	exp, err := ParseExpiry(expiry, time.Now())
	var tok CreatedToken
	if err == nil {
		tok, err = h.Service.CreateToken(ctx, me(c), NewToken{Name: f.V("name"), Scopes: c.Request().PostForm["scopes"], Expires: exp}, c.FormValue("command_id"))
	}
	if err != nil {
		if errs.Code(err) != errs.Invalid {
			return err
		}
		return h.profile(c, me(c), http.StatusUnprocessableEntity, func(v *templates.ProfileView) {
			v.Tokens.Form = web.WithError(f, err)
		})
	}
	return h.profile(c, me(c), http.StatusCreated, func(v *templates.ProfileView) {
		v.Tokens.NewName, v.Tokens.NewSecret = f.V("name"), tok.Secret
		if tok.Repeated {
			v.Tokens.Form.Message = "That token was made already; its secret was shown then and cannot be shown again."
		}
	})
}

// RevokeToken revokes one of the signed-in person's tokens at once.
func (h *Handlers) RevokeToken(c echo.Context) error {
	id := c.Param("id")
	if err := h.Service.RevokeToken(c.Request().Context(), me(c), id, c.FormValue("command_id")); err != nil {
		return err
	}
	h.Env.Flash(c, fmt.Sprintf("Token %s was revoked: it no longer works.", id))
	return web.Redirect(c, myPage(c)+"#tokens")
}
