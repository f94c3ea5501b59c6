package tickets

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"braid/internal/auth"
	"braid/internal/events"
	"braid/templates"
)

// words says what each ticket event did, as a person would say it.
var words = map[string]string{
	"ticket_opened":     "opened",
	"ticket_edited":     "edited",
	"ticket_assigned":   "assigned",
	"ticket_unassigned": "unassigned",
	"ticket_closed":     "closed",
	"ticket_reopened":   "reopened",
	"comment_added":     "commented on",
	"comment_edited":    "edited a comment on",
	"comment_deleted":   "deleted a comment on",
	"attachment_added":  "attached a file to",
	"ticket_field_set":  "set a field of", // internal/fields
	"relation_added":    "linked",
	"relation_removed":  "unlinked",
}

// Describe puts the ticket events among evs in plain words ("opened #3
// Printer on fire"), keyed by position, with each ticket's current title
// read in one query. Events of other aggregates are left out.
func Describe(ctx context.Context, q events.Querier, evs []events.Event) (map[int64]templates.Activity, error) {
	out := map[int64]templates.Activity{}
	var ids []any
	seen := map[string]bool{}
	for _, e := range evs {
		if e.AggregateType == Aggregate && !seen[e.AggregateID] {
			seen[e.AggregateID] = true
			ids = append(ids, e.AggregateID)
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	titles := map[string]string{}
	rows, err := q.QueryContext(ctx, `SELECT id, title FROM tickets WHERE id IN (?`+strings.Repeat(",?", len(ids)-1)+`)`, ids...)
	if err != nil {
		return nil, fmt.Errorf("look up titles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, title string
		if err := rows.Scan(&id, &title); err != nil {
			return nil, err
		}
		titles[id] = title
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Assignees are named by id in the log: say their names.
	var assignees []string
	for _, e := range evs {
		var d Assigned
		if e.AggregateType == Aggregate && e.Type == "ticket_assigned" && json.Unmarshal(e.Data, &d) == nil {
			assignees = append(assignees, d.Assignee)
		}
	}
	names, err := auth.Names(ctx, q, assignees)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		if e.AggregateType != Aggregate {
			continue
		}
		w, ok := words[e.Type]
		if !ok {
			w = "changed"
		}
		if e.Type == "ticket_assigned" {
			var d Assigned
			if json.Unmarshal(e.Data, &d) == nil && d.Assignee != "" {
				name := d.Assignee
				if p, ok := names[d.Assignee]; ok {
					name = p.Name
				}
				w = "assigned " + name + " to"
			}
		}
		what := "#" + e.AggregateID
		if t := titles[e.AggregateID]; t != "" {
			what += " " + t
		}
		out[e.Position] = templates.Activity{Words: w, Link: "/tickets/" + e.AggregateID, What: what, At: e.OccurredAt}
	}
	return out, nil
}
