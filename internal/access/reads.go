package access

import (
	"context"
	"encoding/json"
	"fmt"

	"braid/internal/errs"
	"braid/internal/events"
)

// Reads follow roles: the activity feed, one event, a profile's recent
// activity and the inbox leave out what belongs to a project the reader
// may not read. Scope is what one person may read of the log.
type Scope struct {
	All      bool     // every project (a site admin, the operator)
	Projects []string // else the projects they may read
}

// ScopeOf is person's Scope, read now. Only a site admin (or the
// operator) reads everything unfiltered: someone who happens to read every
// project there is now still does not read the next one's.
func ScopeOf(ctx context.Context, q events.Querier, person string) (Scope, error) {
	admin := person == System
	if !admin {
		var err error
		if admin, err = siteAdmin(ctx, q, person); err != nil {
			return Scope{}, err
		}
	}
	if admin {
		return Scope{All: true}, nil
	}
	slugs, _, err := Visible(ctx, q, person)
	if err != nil {
		return Scope{}, err
	}
	return Scope{Projects: slugs}, nil
}

func (s Scope) slugsJSON() string {
	b, _ := json.Marshal(append([]string{}, s.Projects...))
	return string(b)
}

// ProjectOfEvent is the SQL for the project an events row (alias e)
// belongs to: a ticket's project, a project's own events, a project
// invitation's project; NULL for the site's and people's events, which
// every signed-in person may read.
const ProjectOfEvent = `CASE e.aggregate_type
	WHEN 'ticket' THEN (SELECT t.project FROM tickets t WHERE t.id = CAST(e.aggregate_id AS INTEGER))
	WHEN 'project' THEN e.aggregate_id
	WHEN 'invitation' THEN (SELECT NULLIF(i.project, '') FROM invitations i WHERE i.id = e.aggregate_id)
END`

// EventWhere is a SQL condition on an events row (alias e) that holds for
// the events the scope may read, with its arguments.
func (s Scope) EventWhere() (string, []any) {
	if s.All {
		return "1", nil
	}
	return `COALESCE(` + ProjectOfEvent + `, '') IN (SELECT '' UNION ALL SELECT value FROM json_each(?))`, []any{s.slugsJSON()}
}

// TicketWhere is a SQL condition on a column holding a ticket id that
// holds for tickets of projects the scope may read.
func (s Scope) TicketWhere(col string) (string, []any) {
	if s.All {
		return "1", nil
	}
	return col + ` IN (SELECT t.id FROM tickets t WHERE t.project IN (SELECT value FROM json_each(?)))`, []any{s.slugsJSON()}
}

// CanReadEvent is not_found unless person may read the event at position
// (one that does not exist is not_found too, with the same words).
func CanReadEvent(ctx context.Context, q events.Querier, person string, position int64) error {
	s, err := ScopeOf(ctx, q, person)
	if err != nil {
		return err
	}
	where, args := s.EventWhere()
	var n int
	err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM events e WHERE e.position = ? AND `+where, append([]any{position}, args...)...).Scan(&n)
	if err != nil {
		return fmt.Errorf("read event's project: %w", err)
	}
	if n == 0 {
		return errs.E(errs.NotFound, "there is no event at position %d", position)
	}
	return nil
}

// EventsWhere reads up to limit events, newest first, below position
// before (0: from the head), by actor when actor is not "", that scope may
// read.
func EventsWhere(ctx context.Context, q events.Querier, s Scope, actor string, before int64, limit int) ([]events.Event, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	where, args := s.EventWhere()
	cond := `e.position < ?`
	a := []any{before}
	if actor != "" {
		cond += ` AND e.actor = ?`
		a = append(a, actor)
	}
	a = append(a, args...)
	a = append(a, limit)
	return events.Select(ctx, q, `WHERE `+cond+` AND `+where+` ORDER BY e.position DESC LIMIT ?`, a...)
}
