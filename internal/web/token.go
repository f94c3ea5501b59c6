package web

import (
	"context"
	"mime"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// Token is the personal access token a request came with (internal/auth
// tokens.go): such a request is authenticated by its Authorization header
// alone, so it needs no CSRF token (CSRFProtect skips it and only it).
type Token struct {
	ID     string
	Scopes []string // read, write, admin
	// Project is a bot token's one project: it may act there and nowhere
	// else (cmd/web botscope.go); "" for a personal token.
	Project string
}

// Has says whether the token carries scope.
func (t Token) Has(scope string) bool { return slices.Contains(t.Scopes, scope) }

type tokenKey struct{}

// WithToken returns ctx marked as authenticated by t.
func WithToken(ctx context.Context, t Token) context.Context {
	return context.WithValue(ctx, tokenKey{}, t)
}

// TokenOf returns the token the request was authenticated by, if any.
func TokenOf(ctx context.Context) (Token, bool) {
	t, ok := ctx.Value(tokenKey{}).(Token)
	return t, ok
}

// BearerHeader reports whether the request carries an Authorization:
// Bearer header (valid or not).
func BearerHeader(c echo.Context) bool {
	scheme, _, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
	return strings.EqualFold(scheme, "Bearer")
}

// JSONBody reports whether the request's body is declared JSON.
func JSONBody(c echo.Context) bool {
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	return mt == echo.MIMEApplicationJSON
}
