package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"github.com/alexedwards/scs/v2"
	"github.com/labstack/echo/v4"

	"braid/internal/errs"
)

// csrfCookie holds the browser's CSRF secret: random, HttpOnly, rotated at
// sign-in and sign-out. A visitor who is not signed in gets this cookie and
// no session row.
const csrfCookie = "braid_csrf"

// errCSRF is the one answer to a missing, wrong or cross-site token.
var errCSRF = errs.E(errs.Forbidden, "The form's security token was missing or out of date. Go back, reload the page and try again.")

type csrfKey struct{}

type csrfConfig struct {
	sessions *scs.SessionManager
	secure   bool
}

// CSRFProtect guards every unsafe request (anything but GET, HEAD, OPTIONS
// and TRACE) with a token the page drew: the hidden _csrf field of the
// posted body or the X-CSRF-Token header, never the URL's query, where it
// would leak into logs and Referer headers. The token is an HMAC of the
// session token keyed by the cookie's secret, so it is bound to this
// browser and this session: a token drawn before sign-in, in another
// session or for another person does not pass, and neither does one whose
// cookie was planted by someone else (they lack the session token). A
// request a browser marks Sec-Fetch-Site: cross-site is refused outright.
// It runs after the sessions are loaded; the token is in the context for
// CSRF(c).
func CSRFProtect(sessions *scs.SessionManager, secure bool) echo.MiddlewareFunc {
	conf := &csrfConfig{sessions: sessions, secure: secure}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if _, ok := TokenOf(req.Context()); ok {
				return next(c) // authenticated by its Authorization header, which no other site can make a browser send
			}
			secret := readSecret(c)
			if secret == nil {
				secret = conf.newSecret(c)
			}
			want := csrfToken(secret, sessions.Token(req.Context()))
			c.Set("csrf", want)
			c.Response().Header().Add(echo.HeaderVary, echo.HeaderCookie)
			switch req.Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
			default:
				if req.Header.Get(echo.HeaderSecFetchSite) == "cross-site" {
					return errCSRF
				}
				got := req.Header.Get(echo.HeaderXCSRFToken)
				if got == "" {
					got = req.PostFormValue("_csrf") // the body only
				}
				if !hmac.Equal([]byte(got), []byte(want)) {
					return errCSRF
				}
			}
			c.SetRequest(req.WithContext(context.WithValue(req.Context(), csrfKey{}, conf)))
			return next(c)
		}
	}
}

// RotateCSRF gives the browser a new CSRF secret, so that no token drawn
// before works afterwards. Sign-in calls it after renewing the session,
// sign-out after destroying it.
func RotateCSRF(c echo.Context) {
	conf, ok := c.Request().Context().Value(csrfKey{}).(*csrfConfig)
	if !ok {
		return
	}
	secret := conf.newSecret(c)
	c.Set("csrf", csrfToken(secret, conf.sessions.Token(c.Request().Context())))
}

func (conf *csrfConfig) newSecret(c echo.Context) []byte {
	secret := make([]byte, 32)
	rand.Read(secret)
	c.SetCookie(&http.Cookie{Name: csrfCookie, Value: base64.RawURLEncoding.EncodeToString(secret), Path: "/",
		HttpOnly: true, Secure: conf.secure, SameSite: http.SameSiteLaxMode})
	return secret
}

// readSecret returns the cookie's secret, or nil when it is missing or
// malformed.
func readSecret(c echo.Context) []byte {
	k, err := c.Cookie(csrfCookie)
	if err != nil {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(k.Value)
	if err != nil || len(b) != 32 {
		return nil
	}
	return b
}

func csrfToken(secret []byte, session string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("braid csrf\x00" + session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
