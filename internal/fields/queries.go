package fields

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/tickets"
)

// List lists the fields project defines, in the order they were defined.
func List(ctx context.Context, q events.Querier, project string) ([]Field, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, kind, choices FROM project_fields WHERE project = ? ORDER BY seq`, project)
	if err != nil {
		return nil, fmt.Errorf("list fields: %w", err)
	}
	defer rows.Close()
	out := []Field{}
	for rows.Next() {
		f := Field{Project: project}
		var cs string
		if err := rows.Scan(&f.Name, &f.Kind, &cs); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(cs), &f.Choices); err != nil {
			return nil, fmt.Errorf("field %s choices: %w", f.Name, err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// Get reads one field of project.
func Get(ctx context.Context, q events.Querier, project, name string) (Field, error) {
	f := Field{Project: project, Name: name}
	var cs string
	err := q.QueryRowContext(ctx, `SELECT kind, choices FROM project_fields WHERE project = ? AND name = ?`, project, name).Scan(&f.Kind, &cs)
	if errors.Is(err, sql.ErrNoRows) {
		return f, errs.E(errs.NotFound, "This project has no field called %q.", name)
	}
	if err != nil {
		return f, fmt.Errorf("read field: %w", err)
	}
	return f, json.Unmarshal([]byte(cs), &f.Choices)
}

// Values are a ticket's field values by field name, only the fields its
// project defines now.
func Values(ctx context.Context, q events.Querier, ticket int64) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT v.name, v.value FROM ticket_fields v
		JOIN tickets t ON t.id = v.ticket_id
		JOIN project_fields d ON d.project = t.project AND d.name = v.name
		WHERE v.ticket_id = ?`, ticket)
	if err != nil {
		return nil, fmt.Errorf("read field values: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			return nil, err
		}
		out[n] = v
	}
	return out, rows.Err()
}

// Relation is one relation of a ticket, as its page shows it.
type Relation struct {
	Kind   string `json:"kind"`
	Other  int64  `json:"other"`
	Title  string `json:"title"`
	Status string `json:"status"`
}

// Relations lists ticket's relations whose other ticket is in a project
// the reader may see (visible; all for every project), by kind then
// number.
func Relations(ctx context.Context, q events.Querier, ticket int64, visible []string, all bool) ([]Relation, error) {
	rows, err := q.QueryContext(ctx, `SELECT r.kind, r.other, t.title, t.status, t.project FROM ticket_relations r
		JOIN tickets t ON t.id = r.other WHERE r.ticket_id = ? ORDER BY r.kind, r.other`, ticket)
	if err != nil {
		return nil, fmt.Errorf("read relations: %w", err)
	}
	defer rows.Close()
	out := []Relation{}
	for rows.Next() {
		var r Relation
		var project string
		if err := rows.Scan(&r.Kind, &r.Other, &r.Title, &r.Status, &project); err != nil {
			return nil, err
		}
		if !all && !contains(visible, project) {
			continue // a ticket the reader may not see is not shown, nor its title
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Template is one ticket template of a project.
type Template struct {
	Project string `json:"project"`
	Name    string `json:"name"`
	Body    string `json:"body"`
}

// Templates lists project's templates by name.
func Templates(ctx context.Context, q events.Querier, project string) ([]Template, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, body FROM project_templates WHERE project = ? ORDER BY name`, project)
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	defer rows.Close()
	out := []Template{}
	for rows.Next() {
		t := Template{Project: project}
		if err := rows.Scan(&t.Name, &t.Body); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// ListClauses turns the list page's field.NAME=VALUE parameters and
// sort=field.NAME into conditions and an order over the list's ticket t.
// A value is matched only where the ticket's project defines the field.
func ListClauses(ctx context.Context, q events.Querier, eq map[string]string, sortBy string) (where []string, args []any, keyed *tickets.Keyed, err error) {
	names := make([]string, 0, len(eq))
	for n := range eq {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		// The index on (name, value) finds the tickets; the definition
		// check keeps values of a removed field out.
		where = append(where, `t.id IN (SELECT v.ticket_id FROM ticket_fields v WHERE v.name = ? AND v.value = ?)
			AND EXISTS (SELECT 1 FROM project_fields d WHERE d.project = t.project AND d.name = ?)`)
		args = append(args, n, eq[n], n)
	}
	if sortBy == "" {
		return where, args, nil, nil
	}
	var defined bool
	if err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM project_fields WHERE name = ?)`, sortBy).Scan(&defined); err != nil {
		return nil, nil, nil, fmt.Errorf("read field: %w", err)
	}
	if !defined {
		return nil, nil, nil, errs.Field("sort", "There is no field called %q to sort by.", sortBy)
	}
	// Each value's sort key (sortKeySQL) follows the oldest definition of
	// the name: numbers by value, one-of by the order of its choices, text
	// and dates (YYYY-MM-DD) as text; the index on (name, sort_key,
	// ticket_id DESC) gives them in order. Tickets without a key (no
	// value, a value not among the choices) or in a project without the
	// field come last, newest first.
	const hasKey = "k.name = ? AND k.sort_key IS NOT NULL AND EXISTS (SELECT 1 FROM project_fields d WHERE d.project = t.project AND d.name = k.name)"
	return where, args, &tickets.Keyed{
		From:     "ticket_fields k JOIN tickets t ON t.id = k.ticket_id",
		Cond:     hasKey,
		Args:     []any{sortBy},
		Order:    "k.sort_key, k.ticket_id DESC",
		None:     "NOT EXISTS (SELECT 1 FROM ticket_fields k WHERE k.ticket_id = t.id AND " + hasKey + ")",
		NoneArgs: []any{sortBy},
	}, nil
}
