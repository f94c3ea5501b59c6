// Package web holds what every HTTP handler shares: the page frame, the
// signed-in user, rendering, form helpers and the one place that maps error
// codes to HTTP statuses. Feature packages (auth, tickets) build on it.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/a-h/templ"
	"github.com/alexedwards/scs/v2"
	"github.com/labstack/echo/v4"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/static"
	"braid/templates"
)

// Env is what handlers share: built once in run, read-only afterwards.
type Env struct {
	DB       *events.DB
	Writer   *events.Writer
	Registry *events.Registry
	Sessions *scs.SessionManager
	Assets   *static.Assets
	Log      *slog.Logger
	// Verdict returns the latest check of the braid (Monitor.Verdict), so
	// every page's footer can say when it is broken; nil shows nothing.
	Verdict func() (VerifyRun, bool)
	// Names resolves person ids to display names and current usernames in
	// one query (the people projection); nil shows ids only.
	Names func(ctx context.Context, ids []string) (map[string]templates.Person, error)
	// Unread counts a person's unread notifications for the header
	// (internal/notify); nil shows no count.
	Unread func(ctx context.Context, user string) (int, error)
	// IsAdmin says whether a person is a site admin (internal/auth), for
	// the header's Admin link.
	IsAdmin func(ctx context.Context, user string) (bool, error)
	// Private says whether events of a type hold personal data that only
	// their actor may read on the activity pages (an email address); the
	// others see the event without its payload. Nil: none.
	Private func(eventType string) bool
	// Readable reads the events person may read (internal/access: reads
	// follow roles), newest first, below position before (0: the head), up
	// to limit; ReadableEvent is not_found for an event they may not read.
	// Nil: every event, to everyone signed in.
	Readable      func(ctx context.Context, person string, before int64, limit int) ([]events.Event, error)
	ReadableEvent func(ctx context.Context, person string, position int64) error
	// Transparency names the log's checkpoint signer for /verify; nil
	// shows nothing.
	Transparency *Transparency
	// Mirror says, on a read-only mirror, what its banner shows and the
	// source's address (cmd/web/mirror.go); nil on the source itself.
	Mirror func(ctx context.Context) (banner, source string)
	// Replica is replication (serve --replicate or --follow); nil: none.
	Replica *Replica
	// Stream serves GET /events/stream (internal/stream); nil: no route.
	Stream echo.HandlerFunc
	// MaxAttachment limits the files of one upload (serve --max-attachment)
	// and AttachmentTypes lists the types allowed (internal/attach); 0: no
	// uploads.
	MaxAttachment   int64
	AttachmentTypes []string
}

// People resolves every person id in ids with one query and returns how
// to name each on a page. "system" and unknown ids are shown as they
// are, unlinked.
func (env *Env) People(ctx context.Context, ids ...string) (func(string) templates.Person, error) {
	names := map[string]templates.Person{}
	if env.Names != nil {
		var err error
		if names, err = env.Names(ctx, ids); err != nil {
			return nil, err
		}
	}
	return func(id string) templates.Person {
		if p, ok := names[id]; ok {
			return p
		}
		return templates.Person{ID: id, Username: id}
	}, nil
}

// Transparency is the log's identity as a transparency log: the origin
// line of its checkpoints and the verifier key that opens them.
type Transparency struct {
	Origin string
	VKey   string
}

// User is the signed-in person.
type User struct {
	ID          string // the stable person id events name them by
	Username    string // the current username
	DisplayName string
}

type userKey struct{}

type sessionKey struct{}

// SessionLoaded marks the request as having its session loaded (it runs
// right after scs's LoadAndSave). Pages drawn for requests that never
// reached the sessions (a 404 for an unknown path, a 413) have no flash.
func SessionLoaded(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.SetRequest(c.Request().WithContext(context.WithValue(c.Request().Context(), sessionKey{}, true)))
		return next(c)
	}
}

func hasSession(ctx context.Context) bool {
	ok, _ := ctx.Value(sessionKey{}).(bool)
	return ok
}

// WithUser returns ctx carrying the signed-in user.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// CurrentUser returns the signed-in user, if any.
func CurrentUser(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}

// CSRF returns the form token for this request.
func CSRF(c echo.Context) string {
	if t, ok := c.Get("csrf").(string); ok {
		return t
	}
	return ""
}

// Page builds the frame for a page titled title.
func (env *Env) Page(c echo.Context, title, nav string) templates.Page {
	ctx := c.Request().Context()
	p := templates.Page{Title: title, CSRF: CSRF(c), Asset: env.Assets.URL, Nav: nav}
	if u, ok := CurrentUser(ctx); ok {
		p.User, p.UserName = u.Username, u.DisplayName
		if env.Unread != nil {
			p.Unread, _ = env.Unread(ctx, u.ID) // a count that cannot be read is not worth failing the page
		}
		if env.IsAdmin != nil {
			p.Admin, _ = env.IsAdmin(ctx, u.ID) // only a link: /admin checks again
		}
	}
	if env.Sessions != nil && hasSession(ctx) {
		if f := env.Sessions.PopString(ctx, "flash"); f != "" {
			p.Flash = f
		}
	}
	if env.Writer != nil {
		h := env.Writer.Head()
		p.HeadPos = h.Position
		if h.Position > 0 {
			p.HeadShort = events.Short(h.Hash)
		}
	}
	if env.Mirror != nil {
		p.Mirror, p.MirrorURL = env.Mirror(ctx)
	}
	if env.Replica != nil {
		st := env.Replica.Now()
		if env.Replica.Following {
			p.Banner, p.Primary = st.Sentence(), env.Replica.Primary
			if h, err := events.ReadHead(ctx, env.DB.Read); err == nil && h.Position > 0 { // no writer: the copy's head
				p.HeadPos, p.HeadShort = h.Position, events.Short(h.Hash)
			}
		} else if nav == "verify" || c.Path() == "/verify" {
			p.Replication = st.Sentence()
		}
	}
	if env.Verdict != nil {
		if run, ok := env.Verdict(); ok && run.Err == nil && run.Report.Failure != nil {
			p.BrokenAt = run.Report.Failure.Position
		}
	}
	return p
}

// Flash stores a message shown on the next page.
func (env *Env) Flash(c echo.Context, msg string) {
	if _, token := TokenOf(c.Request().Context()); token {
		return // a script has no next page, and needs no session
	}
	if env.Sessions != nil && hasSession(c.Request().Context()) {
		env.Sessions.Put(c.Request().Context(), "flash", msg)
	}
}

// Render writes component with status. A script (WantsJSON) is never
// answered a page for a refusal: a handler that draws its form again
// gets the JSON error shape here, with the status's plain words.
func Render(c echo.Context, status int, component templ.Component) error {
	if status >= 400 && WantsJSON(c) {
		msg := headings[status]
		if msg == "" {
			msg = http.StatusText(status)
		}
		return c.JSON(status, map[string]any{"error": map[string]any{"code": status, "message": msg, "fields": nil}})
	}
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	return component.Render(c.Request().Context(), c.Response())
}

// WantsJSON reports whether the request is a script's, to be answered
// in JSON: it asked for JSON, sent a JSON body, or came with a token.
func WantsJSON(c echo.Context) bool {
	return strings.Contains(c.Request().Header.Get(echo.HeaderAccept), echo.MIMEApplicationJSON) ||
		JSONBody(c) || BearerHeader(c)
}

// Redirect answers 303 See Other to url.
func Redirect(c echo.Context, url string) error { return c.Redirect(http.StatusSeeOther, url) }

// Status maps an error code to its HTTP status: the one table in the app.
func Status(code string) int {
	switch code {
	case errs.Invalid:
		return http.StatusUnprocessableEntity
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict:
		return http.StatusConflict
	case errs.Unauthorized:
		return http.StatusUnauthorized
	case errs.Forbidden:
		return http.StatusForbidden
	case errs.TooMany:
		return http.StatusTooManyRequests
	case errs.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

var headings = map[int]string{
	http.StatusNotFound:            "Not found",
	http.StatusForbidden:           "Not allowed",
	http.StatusConflict:            "Changed meanwhile",
	http.StatusUnprocessableEntity: "That did not work",
	http.StatusTooManyRequests:     "Too many attempts",
	http.StatusBadRequest:          "Bad request",
	http.StatusMethodNotAllowed:    "Method not allowed",
	http.StatusUnauthorized:        "Sign in needed",
	http.StatusServiceUnavailable:  "Cannot save right now",
}

// ErrorHandler is echo's HTTPErrorHandler: it maps errs codes (and echo's
// own HTTP errors) to a status and a page or JSON body, logging only
// internal errors, once.
func (env *Env) ErrorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status := Status(errs.Code(err))
	msg := errs.Message(err)
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status = he.Code
		msg = http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && status < 500 {
			msg = m
		}
	}
	if status >= 500 && errs.Code(err) != errs.Unavailable { // unavailable says what is wrong; the writer logged it
		env.Log.Error("request failed", slog.String("method", c.Request().Method),
			slog.String("path", LogPath(c.Request().URL.Path)), slog.Any("err", err))
		msg = errs.Message(errs.E(errs.Internal, ""))
	}
	if WantsJSON(c) {
		c.JSON(status, map[string]any{"error": map[string]any{"code": status, "message": msg, "fields": errs.Fields(err)}})
		return
	}
	heading := headings[status]
	if heading == "" {
		heading = http.StatusText(status)
	}
	Render(c, status, templates.Message(env.Page(c, heading, ""), heading, msg))
}

// LogPath is a request's path as a log line may show it: the secret of a
// reset or invitation link is cut off.
func LogPath(path string) string {
	for _, p := range []string{"/reset/", "/join/"} {
		if strings.HasPrefix(path, p) {
			return p + "…"
		}
	}
	return path
}
