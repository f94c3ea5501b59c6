package tickets

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"braid/internal/auth"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
)

// Saved views: a person's named list queries, events on their own
// aggregate (auth.Aggregate), read only by them.

// ViewSaved is the payload of view_saved: Query is the list's query
// string (known parameters only, sorted), saved under Name; saving a name
// again replaces its query.
type ViewSaved struct {
	Name  string `json:"name"`
	Query string `json:"query"`
}

// ViewDeleted is the payload of view_deleted.
type ViewDeleted struct {
	Name string `json:"name"`
}

// Limits of saved views.
const (
	MaxViewName  = 60
	MaxViewQuery = 500
	MaxViews     = 50
)

// viewParams are the list parameters a saved view may hold.
var viewParams = []string{"status", "assignee", "label", "q", "project", "sort", "author", "no_assignee", "no_label"}

// SavedView is one of a person's saved views.
type SavedView struct {
	Name  string `json:"name"`
	Query string `json:"query"`
}

func registerViews(reg *events.Registry, t *Types) {
	t.ViewSaved = events.Define[ViewSaved](reg, "view_saved", 1)
	t.ViewDeleted = events.Define[ViewDeleted](reg, "view_deleted", 1)
	p := reg.NewProjection("saved_views", "saved_views")
	events.On(reg, p, t.ViewSaved, func(ctx context.Context, q events.Querier, e *events.Event, d ViewSaved) error {
		_, err := q.ExecContext(ctx, `INSERT INTO saved_views (user_id, name, query, saved_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (user_id, name) DO UPDATE SET query = excluded.query, saved_at = excluded.saved_at`,
			e.AggregateID, d.Name, d.Query, e.OccurredAt)
		return err
	})
	events.On(reg, p, t.ViewDeleted, func(ctx context.Context, q events.Querier, e *events.Event, d ViewDeleted) error {
		_, err := q.ExecContext(ctx, `DELETE FROM saved_views WHERE user_id = ? AND name = ?`, e.AggregateID, d.Name)
		return err
	})
}

// ViewQuery checks a list query for a saved view and returns it in one
// form: known parameters only, each once, sorted; page dropped.
func ViewQuery(raw string) (string, error) {
	raw = strings.TrimPrefix(strings.TrimSpace(raw), "?")
	if !utf8.ValidString(raw) || len(raw) > MaxViewQuery {
		return "", errs.Field("query", "A view's query is at most %d characters.", MaxViewQuery)
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return "", errs.Field("query", "The view's query is not a list query (%s).", "bad escaping")
	}
	out := url.Values{}
	f := Filter{}
	for k, vs := range vals {
		if k == "page" {
			continue
		}
		known := false
		for _, p := range viewParams {
			known = known || p == k
		}
		if !known {
			return "", errs.Field("query", "A view may hold %s; not %q.", strings.Join(viewParams, ", "), k)
		}
		if len(vs) != 1 {
			return "", errs.Field("query", "%s is given %d times.", k, len(vs))
		}
		v := strings.TrimSpace(vs[0])
		if err := input.Line("query", "The view's query", v, 0); err != nil {
			return "", err
		}
		if v != "" {
			out.Set(k, v)
		}
	}
	f.Status, f.Sort, f.Q, f.Label, f.NoLabel = out.Get("status"), out.Get("sort"), out.Get("q"), out.Get("label"), out.Get("no_label")
	f.Assignee, f.Author = out.Get("assignee"), out.Get("author")
	if err := f.Normalize(); err != nil {
		return "", errs.Field("query", "%s", errs.Message(err))
	}
	if _, err := flagParam("no_assignee", out.Get("no_assignee")); err != nil {
		return "", errs.Field("query", "%s", errs.Message(err))
	}
	q := out.Encode()
	if len(q) > MaxViewQuery {
		return "", errs.Field("query", "A view's query is at most %d characters.", MaxViewQuery)
	}
	return q, nil
}

// SaveView saves the list query under name for actor (replacing a view of
// the same name).
func (s *Service) SaveView(ctx context.Context, actor, name, query, cmdID string) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return errs.Field("name", "Name the view, e.g. \"My open bugs\".")
	}
	if err := input.Line("name", "The name", name, MaxViewName); err != nil {
		return err
	}
	q, err := ViewQuery(query)
	if err != nil {
		return err
	}
	_, err = s.Writer.Do(ctx, events.Command{ID: cmdID, Actor: actor, Kind: "save_view", Fingerprint: events.Fingerprint("save_view", name, q),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			var n int
			var same bool
			if err := tx.Q().QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(name = ?), 0) FROM saved_views WHERE user_id = ?`, name, actor).Scan(&n, &same); err != nil {
				return nil, fmt.Errorf("count views: %w", err)
			}
			if n >= MaxViews && !same {
				return nil, errs.Field("name", "You have %d saved views, the most allowed: delete one first.", n)
			}
			return s.personChange(ctx, tx, actor, s.Types.ViewSaved.New(ViewSaved{Name: name, Query: q}))
		}})
	return err
}

// DeleteView deletes actor's view called name.
func (s *Service) DeleteView(ctx context.Context, actor, name, cmdID string) error {
	name = strings.TrimSpace(name)
	_, err := s.Writer.Do(ctx, events.Command{ID: cmdID, Actor: actor, Kind: "delete_view", Fingerprint: events.Fingerprint("delete_view", name),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			var n int
			if err := tx.Q().QueryRowContext(ctx, `SELECT COUNT(*) FROM saved_views WHERE user_id = ? AND name = ?`, actor, name).Scan(&n); err != nil {
				return nil, fmt.Errorf("find view: %w", err)
			}
			if n == 0 {
				return nil, errs.E(errs.NotFound, "You have no saved view called %q.", name)
			}
			return s.personChange(ctx, tx, actor, s.Types.ViewDeleted.New(ViewDeleted{Name: name}))
		}})
	return err
}

// personChange appends e to the person's own aggregate.
func (s *Service) personChange(ctx context.Context, tx *events.Tx, person string, e events.Pending) ([]events.Change, error) {
	v, _, err := tx.Last(ctx, auth.Aggregate, person)
	if err != nil {
		return nil, err
	}
	return []events.Change{{AggregateType: auth.Aggregate, AggregateID: person, Expect: v, Events: []events.Pending{e}}}, nil
}

// Views lists person's saved views by name. Only the person's own: there
// is no way to ask for another's.
func Views(ctx context.Context, q events.Querier, person string) ([]SavedView, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, query FROM saved_views WHERE user_id = ? ORDER BY name`, person)
	if err != nil {
		return nil, fmt.Errorf("saved views: %w", err)
	}
	defer rows.Close()
	out := []SavedView{}
	for rows.Next() {
		var v SavedView
		if err := rows.Scan(&v.Name, &v.Query); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
