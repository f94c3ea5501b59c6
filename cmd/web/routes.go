package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"braid/internal/access"
	"braid/internal/api"
	"braid/internal/auth"
	"braid/internal/fields"
	"braid/internal/hooks"
	"braid/internal/notify"
	"braid/internal/tickets"
	"braid/internal/web"
	"braid/static"
)

// routes registers every route of the site, grouped by resource, with the
// middleware they run behind. This file is the whole surface at a glance.
func routes(e *echo.Echo, w *web.Env, people *auth.Handlers, tix *tickets.Handlers, inbox *notify.Handlers, projects *access.Handlers, webhooks *hooks.Handlers, erasing *eraseHandlers, mon *web.Monitor, secure bool, flds *fields.Handlers) {
	// Before routing and before anything reads the request: one log line
	// with the final status, panics turned into 500s, the headers every
	// answer carries, the body cap, then the method override (which reads
	// the form, so it must come after the cap).
	e.Pre(requestLog(w.Log))
	e.Pre(middleware.Recover())
	e.Pre(securityHeaders(secure))
	e.Pre(uploadBody(uploadsOf(w))) // multipart files on the upload routes only (attach.go)
	e.Pre(limitBody)
	e.Pre(methodOverride)

	// Public and stateless.
	e.GET("/healthz", healthz(w))
	e.HEAD("/healthz", healthz(w)) // uptime checkers often ask with HEAD
	e.GET("/static/*", staticFiles(w.Assets))
	// The latest signed checkpoint of the transparency tree (C2SP
	// tlog-checkpoint), for witnesses, mirrors and anyone keeping one.
	e.GET("/checkpoint", checkpoint(w.DB))
	// Its hash tiles (C2SP tlog-tiles) and RFC 6962 proofs within the
	// latest signed checkpoint (docs/braid.md): hashes only. The entry
	// bundles hold the events themselves and are behind sign-in (below).
	e.GET("/tile/*", tiles(w.DB, false))
	e.GET("/proof/inclusion", inclusionProof(w.DB))
	e.GET("/proof/consistency", consistencyProof(w.DB))
	// The OpenAPI 3.1 document of every JSON route (internal/api).
	e.GET("/api/openapi.json", api.Serve)

	// A token bound to the browser's secret and its session, rotated at
	// sign-in and sign-out; from the form body or a header, never the query.
	csrf := web.CSRFProtect(w.Sessions, secure)
	// A personal access token (Authorization: Bearer) replaces the
	// cookie's user and skips the CSRF check (docs/api.md).
	s := e.Group("", echo.WrapMiddleware(w.Sessions.LoadAndSave), web.SessionLoaded, people.LoadUser, people.Bearer)
	s.GET("/", func(c echo.Context) error { return web.Redirect(c, "/tickets") })

	// Public pages; every form still carries a CSRF token.
	p := s.Group("", csrf)

	// People.
	p.GET("/register", people.ShowRegister)
	p.POST("/register", people.DoRegister)
	p.GET("/login", people.ShowLogin)
	p.POST("/login", people.DoLogin)
	p.POST("/logout", people.Logout)
	// Passkeys (WebAuthn, usernameless): a challenge kept in the session,
	// then the authenticator's answer as JSON (static/passkey.js).
	p.POST("/login/passkey/options", people.PasskeyLoginOptions)
	p.POST("/login/passkey", people.PasskeyLogin)
	// A one-time link from `web admin reset-password` (the token is the
	// capability; the request log never shows it).
	p.GET("/reset/:token", people.ShowReset)
	p.POST("/reset/:token", people.DoReset)
	// An invitation link an admin made: registers whatever the mode, once.
	p.GET("/join/:token", people.ShowJoin)
	p.POST("/join/:token", people.DoJoin)
	// Or join with a passkey instead of a password (static/passkey.js).
	p.POST("/join/:token/passkey/options", people.JoinPasskeyOptions)
	p.POST("/join/:token/passkey", people.JoinPasskey)

	// The braid, checked in the background; public so anyone can compare
	// the head with a receipt.
	p.GET("/verify", web.VerifyPage(w, mon))

	// Everything below needs a signed-in user: someone signed out is sent to
	// /login (303) before anything else is looked at.
	// A command's JSON body becomes the form its handler reads, once the
	// person and the CSRF token (or a token) are checked (jsonbody.go).
	u := s.Group("", auth.RequireUser, csrf, jsonBody, botScope(w))

	// People: profiles, and one's own account.
	u.GET("/people/:username", people.Profile)
	u.POST("/account/name", people.Rename)
	u.POST("/account/username", people.ChangeUsername)
	u.POST("/account/password", people.ChangePassword)
	u.POST("/account/sessions", people.SignOutOthers)
	u.POST("/account/passkeys/options", people.PasskeyAddOptions)
	u.POST("/account/passkeys", people.PasskeyAdd)
	u.POST("/account/passkeys/:id/remove", people.PasskeyRemove)
	// Personal access tokens for scripts (docs/api.md): made and revoked
	// from a browser only, never with a token.
	u.POST("/account/tokens", people.CreateToken)
	u.POST("/account/tokens/:id/revoke", people.RevokeToken)

	// Site administration: admins only (403 for everyone else, checked
	// again inside each command).
	u.GET("/admin", people.Admin)
	u.POST("/admin/invitations", people.CreateInvitation)
	u.POST("/admin/invitations/:id/revoke", people.RevokeInvitation)
	u.POST("/admin/registration", people.SetRegistration)
	u.POST("/admin/roles", people.SetRole)
	u.POST("/admin/rename", people.AdminRename)
	// Erasure (internal/erase, docs/privacy.md): the form, then a step
	// showing what will be erased, then (confirm=yes) the erasure.
	u.GET("/admin/erase", erasing.Form)
	u.POST("/admin/erase", erasing.Post)
	u.POST("/admin/claim", people.AdminClaim) // imported people (docs/import.md)

	// Projects and the roles people hold in them (internal/access): each
	// page 404s for someone who may not see the project.
	u.GET("/projects", projects.List)
	u.POST("/projects", projects.Create)
	u.GET("/p/:slug", tix.List) // the project's tickets
	u.GET("/p/:slug/people", projects.People)
	u.POST("/p/:slug/people", projects.Grant)
	u.POST("/p/:slug/people/revoke", projects.Revoke)
	u.POST("/p/:slug/everyone", projects.SetEveryone)
	u.POST("/p/:slug/invitations", projects.CreateInvitation)
	// A bot token bound to this project (owners; from a browser only).
	u.POST("/p/:slug/tokens", people.CreateProjectToken)
	u.GET("/p/:slug/history", projects.History)
	// Its webhooks (internal/hooks): owners and site admins.
	u.GET("/p/:slug/webhooks", webhooks.List)
	u.POST("/p/:slug/webhooks", webhooks.Create)
	u.GET("/p/:slug/webhooks/:id", webhooks.Show)
	u.POST("/p/:slug/webhooks/:id", webhooks.Change)
	u.POST("/p/:slug/webhooks/:id/toggle", webhooks.Toggle)
	u.POST("/p/:slug/webhooks/:id/redeliver", webhooks.Redeliver)

	// Tickets. Everything under /tickets/:id is 404 for someone who may
	// not see the ticket's project (read); commands check their own role.
	read := tix.CanRead
	u.GET("/tickets", tix.List)
	u.GET("/tickets/new", tix.New)
	u.POST("/tickets", tix.Create)
	u.POST("/tickets/bulk", tix.Bulk)      // one action on many tickets, one commit
	u.POST("/tickets/views", tix.SaveView) // the person's saved views of the list
	u.POST("/tickets/views/delete", tix.DeleteView)
	u.GET("/tickets/:id", tix.Show, read)
	u.GET("/tickets/:id/edit", tix.EditForm, read)
	u.PATCH("/tickets/:id", tix.Update, read)
	u.POST("/tickets/:id/assign", tix.Assign, read)
	u.POST("/tickets/:id/close", tix.Close, read)
	u.POST("/tickets/:id/reopen", tix.Reopen, read)
	u.POST("/tickets/:id/tasks", tix.Tick, read) // tick a box of the description's task list
	u.GET("/tickets/:id/history", tix.History, read)
	// The ticket's events with their inclusion proofs against the latest
	// signed checkpoint, for `web verify --bundle` (docs/braid.md).
	u.GET("/tickets/:id/proof", ticketProof(w), read)
	// The tree's entry bundles (C2SP tlog-tiles): every event, as the
	// export writes it, so only for those who may read every event: site
	// admins (404 for anyone else).
	u.GET("/tile/entries/*", tiles(w.DB, true), siteAdminOnly(w.DB.Read))

	// Comments.
	u.POST("/tickets/:id/comments", tix.AddComment, read)
	u.GET("/tickets/:id/comments/:cid/edit", tix.EditCommentForm, read)
	u.PATCH("/tickets/:id/comments/:cid", tix.UpdateComment, read)
	u.GET("/tickets/:id/comments/:cid/delete", tix.ConfirmDeleteComment, read)
	u.DELETE("/tickets/:id/comments/:cid", tix.DeleteComment, read)
	// Its author erases it for good (asks first, on GET).
	u.GET("/tickets/:id/comments/:cid/erase", erasing.ConfirmComment, read)
	u.POST("/tickets/:id/comments/:cid/erase", erasing.EraseComment, read)

	// Attachments (attach.go): upload to a ticket; a file to whoever may
	// read a ticket it is attached to (404 for anyone else).
	u.POST("/tickets/:id/attachments", postAttachments(tix, uploadsOf(w)))
	u.GET("/files/:sha", serveFile(w))
	u.GET("/files/:sha/:name", serveFile(w))

	// Custom fields, relations and ticket templates (internal/fields).
	u.GET("/p/:slug/fields", flds.Page)
	u.POST("/p/:slug/fields", flds.Save)
	u.POST("/p/:slug/fields/remove", flds.Remove)
	u.POST("/p/:slug/templates", flds.SaveTemplate)
	u.POST("/p/:slug/templates/remove", flds.RemoveTemplate)
	u.POST("/tickets/:id/fields", flds.SetValue, read)
	u.POST("/tickets/:id/relations", flds.Relate, read)
	u.POST("/tickets/:id/relations/remove", flds.Unrelate, read)

	// Notifications: watching tickets, the inbox, the digest address.
	u.POST("/tickets/:id/watch", inbox.Watch, read)
	u.POST("/tickets/:id/unwatch", inbox.Unwatch, read)
	u.GET("/inbox", inbox.Inbox)
	u.GET("/inbox/badge", inbox.Badge)
	u.POST("/inbox/read", inbox.Read)
	u.POST("/inbox/email", inbox.SetEmail)

	// The log.
	u.GET("/events", w.Feed)
	if w.Stream != nil { // every event after a position, then live (SSE)
		u.GET("/events/stream", w.Stream)
	}
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
		if w.Writer != nil {
			if err := w.Writer.Health(); err != nil { // e.g. "writes failing: disk full"
				return c.String(http.StatusServiceUnavailable, "writes failing: "+err.Error()+"\n")
			}
		}
		if w.Replica != nil { // serve --replicate or --follow: a second line
			return c.String(http.StatusOK, "ok\n"+replicaLine(w.Replica.Now())+"\n")
		}
		return c.String(http.StatusOK, "ok\n")
	}
}

// staticFiles serves the embedded assets. A file asked for with its own
// content hash (?v=, as Assets.URL draws it) may be cached for a year; any
// other ?v= or none must be checked again (no-cache, with the hash as ETag).
// Directories are not listed: they are 404 like anything unknown.
func staticFiles(a *static.Assets) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store") // until there is a file to cache
		name, ok := strings.CutPrefix(r.URL.Path, "/static/")
		if !ok || !fs.ValidPath(name) || name == "." {
			return echo.ErrNotFound
		}
		f, err := a.FS.Open(name)
		if err != nil {
			return echo.ErrNotFound
		}
		defer f.Close()
		st, err := f.Stat()
		rs, seekable := f.(io.ReadSeeker)
		if err != nil || st.IsDir() || !seekable {
			return echo.ErrNotFound
		}
		version := a.Version(name)
		if v := r.URL.Query().Get("v"); v != "" && v == version {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		h.Set("ETag", `"`+version+`"`)
		http.ServeContent(c.Response(), r, name, st.ModTime(), rs)
		return nil
	}
}

// securityHeaders sets the headers every answer carries: a CSP with no
// inline script, no framing, no sniffing and a strict referrer policy;
// no-store on everything but the static files (pages show what a person
// may see, and must not outlive sign-out in a shared cache or the back
// button); HSTS when the cookies are Secure, that is behind TLS.
func securityHeaders(secure bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
			if !strings.HasPrefix(c.Request().URL.Path, "/static/") {
				h.Set("Cache-Control", "no-store")
			}
			if secure {
				h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
			}
			return next(c)
		}
	}
}

// maxBody caps every request body. The largest form is a 20,000-character
// body with its labels: 1 MiB leaves room for multi-byte text and refuses
// anything else.
const maxBody = 1 << 20

// limitBody runs before anything reads the body. A declared length over the
// cap is refused at once, unread (413). Any other body (chunked or short)
// is read into memory, at most maxBody+1 bytes, so that a body over the cap
// is a 413 here and never a half-read form further on, and no later reader
// can take more. Multipart bodies are refused (415): no form of the site
// sends one, and Go's multipart reader spools large parts to temporary
// files, a parser and a disk nobody needs to expose.
func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if c.Get(uploadedKey) != nil {
			return next(c) // read and capped by uploadBody (attach.go)
		}
		if r.ContentLength > maxBody {
			return tooLarge()
		}
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			b, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, maxBody))
			var big *http.MaxBytesError
			switch {
			case errors.As(err, &big):
				return tooLarge()
			case err != nil:
				return echo.NewHTTPError(http.StatusBadRequest, "The request body could not be read.")
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType)); strings.HasPrefix(mt, "multipart/") {
			return echo.NewHTTPError(http.StatusUnsupportedMediaType, "Multipart bodies are not accepted: send the form as application/x-www-form-urlencoded.")
		}
		return next(c)
	}
}

func tooLarge() error {
	return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "The request is too large: the limit is 1 MB.")
}

// methodOverride lets a POST form act as PATCH or DELETE through its
// _method field (browsers send only GET and POST). Nothing else is honoured:
// turning a POST into a GET would skip the CSRF check. A form that cannot
// be parsed (bad percent-encoding) is a 400 here, once, for every handler.
func methodOverride(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method != http.MethodPost {
			return next(c)
		}
		if err := r.ParseForm(); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read: it is not valid URL encoding.")
		}
		switch m := r.PostForm.Get("_method"); m {
		case "":
		case http.MethodPatch, http.MethodDelete:
			r.Method = m
		default:
			return echo.NewHTTPError(http.StatusBadRequest, "_method must be PATCH or DELETE.")
		}
		return next(c)
	}
}

// requestLog logs one line per request with log/slog, with the status the
// client got: errors are handed to the error handler first (HandleError).
// It runs before routing, so it sees every answer, 404s and 413s included.
func requestLog(log *slog.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogURIPath: true, LogMethod: true, LogLatency: true, HandleError: true,
		Skipper: func(c echo.Context) bool { return strings.HasPrefix(c.Request().URL.Path, "/static/") },
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			path := web.LogPath(v.URIPath)
			log.Info("request", slog.String("method", v.Method), slog.String("path", path),
				slog.Int("status", v.Status), slog.Duration("took", v.Latency.Round(time.Microsecond)))
			return nil
		},
	})
}
