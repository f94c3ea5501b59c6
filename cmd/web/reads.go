package main

import (
	"context"
	"database/sql"

	"github.com/labstack/echo/v4"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/web"
)

// readable gives the activity pages their filter: reads follow roles
// (internal/access), so the feed leaves out, and one event's page 404s
// for, the events of a project the reader may not read.
func readable(db *sql.DB) (func(context.Context, string, int64, int) ([]events.Event, error), func(context.Context, string, int64) error) {
	list := func(ctx context.Context, person string, before int64, limit int) ([]events.Event, error) {
		s, err := access.ScopeOf(ctx, db, person)
		if err != nil {
			return nil, err
		}
		return access.EventsWhere(ctx, db, s, "", before, limit)
	}
	one := func(ctx context.Context, person string, position int64) error {
		return access.CanReadEvent(ctx, db, person, position)
	}
	return list, one
}

// siteAdminOnly guards the entry bundles: they hold every event of every
// project, so only someone who may read every project (a site admin) may
// read them; anyone else signed in gets 404, as for a page they may not
// see. A mirror signs in as a site admin (docs/verification.md).
func siteAdminOnly(db *sql.DB) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			u, _ := web.CurrentUser(c.Request().Context())
			if err := access.Can(c.Request().Context(), db, u.ID, access.SiteAdmin, ""); err != nil {
				if errs.Code(err) == errs.Forbidden {
					return errs.E(errs.NotFound, "The entry bundles hold every event of every project: only a site admin may read them.")
				}
				return err
			}
			return next(c)
		}
	}
}
