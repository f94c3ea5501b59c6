package main

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"braid/internal/auth"
	"braid/internal/tickets"
	"braid/internal/web"
)

// routes registers every route of the site, grouped by resource, with the
// middleware they run behind. This file is the whole surface at a glance.
func routes(e *echo.Echo, w *web.Env, people *auth.Handlers, tix *tickets.Handlers, mon *web.Monitor, secure bool) {
	e.Pre(middleware.MethodOverrideWithConfig(middleware.MethodOverrideConfig{
		Getter: middleware.MethodFromForm("_method"),
	}))
	e.Use(requestLog(w.Log))
	e.Use(middleware.Recover())
	// The largest form is a 20,000-character body with its labels: 1 MB
	// leaves room for multi-byte text and refuses anything else (413).
	e.Use(middleware.BodyLimit("1M"))
	e.Use(securityHeaders)

	// Public and stateless.
	e.GET("/healthz", healthz(w))
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", staticFiles(w))))

	csrf := middleware.CSRFWithConfig(middleware.CSRFConfig{
		TokenLookup:    "form:_csrf,header:X-CSRF-Token",
		CookieName:     "braid_csrf",
		CookiePath:     "/",
		CookieHTTPOnly: true,
		CookieSecure:   secure,
		CookieSameSite: http.SameSiteLaxMode,
		ErrorHandler: func(err error, c echo.Context) error {
			// Missing or wrong, the answer is the same: 403.
			return echo.NewHTTPError(http.StatusForbidden, "invalid csrf token")
		},
	})
	s := e.Group("", echo.WrapMiddleware(w.Sessions.LoadAndSave), web.SessionLoaded, people.LoadUser)
	s.GET("/", func(c echo.Context) error { return web.Redirect(c, "/tickets") })

	// Public pages; every form still carries a CSRF token.
	p := s.Group("", csrf)

	// People.
	p.GET("/register", people.ShowRegister)
	p.POST("/register", people.DoRegister)
	p.GET("/login", people.ShowLogin)
	p.POST("/login", people.DoLogin)
	p.POST("/logout", people.Logout)

	// The braid, checked in the background; public so anyone can compare
	// the head with a receipt.
	p.GET("/verify", web.VerifyPage(w, mon))

	// Everything below needs a signed-in user: someone signed out is sent to
	// /login (303) before anything else is looked at.
	u := s.Group("", auth.RequireUser, csrf)

	// Tickets.
	u.GET("/tickets", tix.List)
	u.GET("/tickets/new", tix.New)
	u.POST("/tickets", tix.Create)
	u.GET("/tickets/:id", tix.Show)
	u.GET("/tickets/:id/edit", tix.EditForm)
	u.PATCH("/tickets/:id", tix.Update)
	u.POST("/tickets/:id/assign", tix.Assign)
	u.POST("/tickets/:id/close", tix.Close)
	u.POST("/tickets/:id/reopen", tix.Reopen)
	u.GET("/tickets/:id/history", tix.History)

	// Comments.
	u.POST("/tickets/:id/comments", tix.AddComment)
	u.GET("/tickets/:id/comments/:cid/edit", tix.EditCommentForm)
	u.PATCH("/tickets/:id/comments/:cid", tix.UpdateComment)
	u.DELETE("/tickets/:id/comments/:cid", tix.DeleteComment)

	// The log.
	u.GET("/events", w.Feed)
	u.GET("/events/:position", w.Event)

	// Anchors: receipts from outside witnesses.
	u.GET("/anchors/:id", w.Anchor)
	u.GET("/anchors/:id/receipt", w.AnchorReceipt)
}

func healthz(w *web.Env) echo.HandlerFunc {
	return func(c echo.Context) error {
		var one int
		if err := w.DB.Read.QueryRowContext(c.Request().Context(), `SELECT 1`).Scan(&one); err != nil {
			return c.String(http.StatusServiceUnavailable, "database unavailable\n")
		}
		if err := w.Writer.Health(); err != nil { // e.g. "writes failing: disk full"
			return c.String(http.StatusServiceUnavailable, "writes failing: "+err.Error()+"\n")
		}
		return c.String(http.StatusOK, "ok\n")
	}
}

func staticFiles(w *web.Env) http.Handler {
	fs := http.FileServerFS(w.Assets.FS)
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("v") != "" {
			rw.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		fs.ServeHTTP(rw, r)
	})
}

// securityHeaders sets the headers every answer carries: a CSP with no
// inline script, no framing, no sniffing and a strict referrer policy.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		return next(c)
	}
}

// requestLog logs one line per request with log/slog.
func requestLog(log *slog.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogURIPath: true, LogMethod: true, LogLatency: true,
		Skipper: func(c echo.Context) bool { return strings.HasPrefix(c.Path(), "/static") },
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			log.Info("request", slog.String("method", v.Method), slog.String("path", v.URIPath),
				slog.Int("status", v.Status), slog.Duration("took", v.Latency.Round(time.Microsecond)))
			return nil
		},
	})
}
