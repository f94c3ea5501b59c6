package auth

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"braid/internal/access"
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
		scopes := strings.Join(t.Scopes, ", ")
		if t.Project != "" {
			scopes += " · only project " + t.Project
		}
		v.List = append(v.List, templates.TokenRow{ID: t.ID, Name: t.Name, Scopes: scopes,
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

// CreateProjectToken makes a bot token bound to the project /p/{slug}
// from its people page (owners and site admins; 403 for anyone else who
// may see it, 404 for who may not). It acts as its maker but only on
// that project. Its secret is shown once: JSON 201 {"token","secret"},
// or the maker's profile (201) with the secret and their tokens listed.
func (h *Handlers) CreateProjectToken(c echo.Context) error {
	ctx := c.Request().Context()
	slug := c.Param("slug")
	if access.ValidSlug(slug) != nil {
		return errs.E(errs.NotFound, "There is no project %q, or you may not see it.", slug)
	}
	f := web.Form(c, "name", "expires", "expires_date")
	expiry := f.V("expires")
	if d := strings.TrimSpace(f.V("expires_date")); d != "" {
		expiry = d
	}
	exp, err := ParseExpiry(expiry, time.Now())
	var tok CreatedToken
	if err == nil {
		tok, err = h.Service.CreateToken(ctx, me(c), NewToken{Name: f.V("name"), Scopes: c.Request().PostForm["scopes"], Expires: exp, Project: slug}, c.FormValue("command_id"))
	}
	if err != nil {
		if errs.Code(err) != errs.Invalid || web.WantsJSON(c) {
			return err
		}
		return h.profile(c, me(c), http.StatusUnprocessableEntity, func(v *templates.ProfileView) {
			v.Tokens.Form = web.WithError(f, err)
		})
	}
	if web.WantsJSON(c) {
		ts, err := Tokens(ctx, h.Env.DB.Read, me(c))
		if err != nil {
			return err
		}
		for _, t := range ts {
			if t.ID == tok.ID {
				return c.JSON(http.StatusCreated, map[string]any{"token": t, "secret": tok.Secret})
			}
		}
		return fmt.Errorf("token %s not found after it was made", tok.ID)
	}
	return h.profile(c, me(c), http.StatusCreated, func(v *templates.ProfileView) {
		v.Tokens.NewName, v.Tokens.NewSecret = f.V("name")+" (project "+slug+")", tok.Secret
		if tok.Repeated {
			v.Tokens.Form.Message = "That token was made already; its secret was shown then and cannot be shown again."
		}
	})
}
