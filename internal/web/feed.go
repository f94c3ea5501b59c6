package web

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/templates"
)

// aggregateLink returns the page of an aggregate, if it has one.
func aggregateLink(typ, id string) string {
	if typ == "ticket" {
		return "/tickets/" + id
	}
	return ""
}

// EventRow is the list view of one event; who names its actor (see
// Env.People).
func EventRow(e *events.Event, who func(string) templates.Person) templates.EventRow {
	return templates.EventRow{Position: e.Position, Aggregate: e.AggregateType + " " + e.AggregateID,
		Link: aggregateLink(e.AggregateType, e.AggregateID), Type: e.Type, Actor: e.Actor, By: who(e.Actor),
		At: e.OccurredAt, Short: events.Short(e.Hash)}
}

// Actors lists the actors of evs, for Env.People.
func Actors(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i := range evs {
		out[i] = evs[i].Actor
	}
	return out
}

const feedSize = 50

// Feed shows the log, newest first, paged by ?before=POSITION.
func (env *Env) Feed(c echo.Context) error {
	var before int64
	if s := c.QueryParam("before"); s != "" {
		b, err := strconv.ParseInt(s, 10, 64)
		if err != nil || b < 1 {
			return errs.Field("before", "before is a log position; got %q", s)
		}
		if b <= env.Writer.Head().Position { // past the head is the newest page
			before = b
		}
	}
	var evs []events.Event
	var err error
	if u, _ := CurrentUser(c.Request().Context()); env.Readable != nil {
		evs, err = env.Readable(c.Request().Context(), u.ID, before, feedSize)
	} else {
		evs, err = events.Feed(c.Request().Context(), env.DB.Read, before, feedSize)
	}
	if err != nil {
		return err
	}
	var older int64
	if len(evs) == feedSize && evs[len(evs)-1].Position > 1 {
		older = evs[len(evs)-1].Position
	}
	for i := range evs {
		env.redact(c, &evs[i])
	}
	if WantsJSON(c) {
		if evs == nil {
			evs = []events.Event{}
		}
		return c.JSON(http.StatusOK, map[string]any{"events": evs, "older_than": older})
	}
	who, err := env.People(c.Request().Context(), Actors(evs)...)
	if err != nil {
		return err
	}
	v := templates.FeedView{OlderThan: older, Newest: before == 0}
	for i := range evs {
		v.Rows = append(v.Rows, EventRow(&evs[i], who))
	}
	return Render(c, http.StatusOK, templates.Feed(env.Page(c, "Activity", "events"), v))
}

// Event shows one event in full.
func (env *Env) Event(c echo.Context) error {
	p, err := strconv.ParseInt(c.Param("position"), 10, 64)
	if err != nil || p < 1 {
		return errs.E(errs.NotFound, "There is no event %q: positions are whole numbers from 1.", c.Param("position"))
	}
	if u, _ := CurrentUser(c.Request().Context()); env.ReadableEvent != nil {
		if err := env.ReadableEvent(c.Request().Context(), u.ID, p); err != nil {
			return err
		}
	}
	e, err := events.Get(c.Request().Context(), env.DB.Read, p)
	if err != nil {
		return err
	}
	env.redact(c, &e)
	if WantsJSON(c) {
		return c.JSON(http.StatusOK, e)
	}
	v := templates.EventView{Position: e.Position, AggregateType: e.AggregateType, AggregateID: e.AggregateID,
		Link: aggregateLink(e.AggregateType, e.AggregateID), Version: e.Version, Type: e.Type, Schema: e.Schema,
		Actor: e.Actor, OccurredAt: e.OccurredAt, CommandID: e.CommandID, Data: eventData(&e),
		ParentHash: events.Hex(e.ParentHash), Hash: events.Hex(e.Hash), HasNext: env.Writer.Head().Position > e.Position}
	return Render(c, http.StatusOK, templates.Event(env.Page(c, "Event "+c.Param("position"), "events"), v))
}

// hidden stands for the payload of a private event on the activity pages.
const hidden = `{"hidden":"personal data, shown only to the person it belongs to"}`

// redact hides the payload of a private event (Env.Private) from everyone
// but its actor. The hash still covers the real payload: the export, which
// only the operator can take, holds it.
func (env *Env) redact(c echo.Context, e *events.Event) {
	if env.Private == nil || !env.Private(e.Type) {
		return
	}
	if u, ok := CurrentUser(c.Request().Context()); ok && u.ID == e.Actor {
		return
	}
	e.Data = []byte(hidden)
}

// eventData is an event's payload as the event page shows it: an erased
// one (internal/erase) says so, with the structure it kept.
func eventData(e *events.Event) string {
	if e.ErasedBy != 0 {
		return fmt.Sprintf("payload erased (by the erased event at position %d); kept: %s", e.ErasedBy, e.Data)
	}
	return string(e.Data)
}
