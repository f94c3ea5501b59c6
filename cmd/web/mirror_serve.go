package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/web"
)

// mirrorSite is what `web serve` needs on a mirror: the source's address
// and its log's identity.
type mirrorSite struct {
	db                   *events.DB
	source, origin, vkey string
}

// mirrorOf returns the mirror the database at db is, or nil when it is a
// Braid of its own.
func mirrorOf(ctx context.Context, db *events.DB) (*mirrorSite, error) {
	m := &mirrorSite{db: db}
	err := db.Read.QueryRowContext(ctx, `SELECT source, origin, vkey FROM mirror WHERE id = 1`).Scan(&m.source, &m.origin, &m.vkey)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fail(exitFailed, "read the mirror marker: %v", err)
	}
	return m, nil
}

// transparency is the source's log identity, shown on /verify: a mirror
// serves the source's checkpoints, never signs its own.
func (m *mirrorSite) transparency() *web.Transparency {
	return &web.Transparency{Origin: m.origin, VKey: m.vkey}
}

// banner says whose mirror this is, how far behind the source's checkpoint
// seen at the last pull it is, and when that pull was.
func (m *mirrorSite) banner(ctx context.Context) (string, string) {
	var size, seen int64
	var pulled, attempted, problem string
	err := m.db.Read.QueryRowContext(ctx, `SELECT size, source_size, pulled_at, attempted_at, problem FROM mirror WHERE id = 1`).
		Scan(&size, &seen, &pulled, &attempted, &problem)
	if err != nil {
		return "Read-only mirror of " + m.source, m.source
	}
	at := func(s string) string {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return s
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	s := fmt.Sprintf("Read-only mirror of %s: %d behind, last pull %s", m.source, max(seen-size, 0), at(pulled))
	if problem != "" {
		s += fmt.Sprintf("; the pull at %s was refused or failed: %s", at(attempted), problem)
	}
	return s, m.source
}

// readOnly refuses every change on a mirror (503, pointing at the source);
// only signing in and out, which touch no log, go through.
func (m *mirrorSite) readOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		switch {
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
		case r.Method == http.MethodPost && (r.URL.Path == "/login" || r.URL.Path == "/logout"):
		default:
			c.Response().Header().Set("Link", "<"+m.source+">; rel=\"canonical\"")
			msg := "This site is a read-only mirror of " + m.source + ": make changes there."
			if web.WantsJSON(c) {
				return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": msg, "source": m.source})
			}
			return errs.E(errs.Unavailable, "%s", msg)
		}
		return next(c)
	}
}

// serveMirror makes the site at srv a mirror's: the banner on every page,
// changes refused.
func (m *mirrorSite) serve(w *web.Env, srv *echo.Echo) {
	w.Mirror = m.banner
	srv.Pre(m.readOnly)
}
