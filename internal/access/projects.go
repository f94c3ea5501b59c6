package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
)

// Payloads, stored under stable names on the aggregate "project" (its id is
// the slug).
type (
	// ProjectCreated: a new project, by the event's actor (a site admin).
	ProjectCreated struct {
		Project string `json:"project"`
		Name    string `json:"name"`
	}
	// RoleGranted gives person role in project. By is the granter: the
	// event's actor, or the person who made the invitation the person
	// joined through.
	RoleGranted struct {
		Project string `json:"project"`
		Person  string `json:"person"`
		Role    string `json:"role"`
		By      string `json:"by"`
		Reason  string `json:"reason,omitempty"` // grant, invitation
	}
	// RoleRevoked takes person's role in project away.
	RoleRevoked struct {
		Project string `json:"project"`
		Person  string `json:"person"`
		Role    string `json:"role"`
		By      string `json:"by"`
	}
	// EveryoneSet turns "everyone signed in is a member" on or off.
	EveryoneSet struct {
		Project string `json:"project"`
		On      bool   `json:"on"`
		By      string `json:"by"`
	}
)

// Types are the event types of projects and their roles.
type Types struct {
	Created     events.Type[ProjectCreated]
	RoleGranted events.Type[RoleGranted]
	RoleRevoked events.Type[RoleRevoked]
	EveryoneSet events.Type[EveryoneSet]
}

// Aggregate is the aggregate type of projects in the log.
const Aggregate = "project"

// Default is the project every ticket from before projects belongs to, and
// every ticket opened without one. It exists without an event; its
// everyone-is-a-member setting is on until someone turns it off.
const Default = "main"

// DefaultName is the default project's name.
const DefaultName = "Main"

// MaxName is the longest project name.
const MaxName = 100

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// ValidSlug checks a project's slug: 1 to 40 lowercase letters, digits
// and dashes, not starting with a dash.
func ValidSlug(s string) error {
	if !slugRE.MatchString(s) {
		return errs.Field("slug", "A project's short name is 1 to 40 lowercase letters, digits and dashes, starting with a letter or digit.")
	}
	return nil
}

// Register defines the project event types and their projection in reg.
func Register(reg *events.Registry) Types {
	t := Types{
		Created:     events.Define[ProjectCreated](reg, "project_created", 1),
		RoleGranted: events.Define[RoleGranted](reg, "project_role_granted", 1),
		RoleRevoked: events.Define[RoleRevoked](reg, "project_role_revoked", 1),
		EveryoneSet: events.Define[EveryoneSet](reg, "project_setting_set", 1),
	}
	p := reg.NewProjection("projects", "projects", "project_roles")
	events.On(reg, p, t.Created, func(ctx context.Context, q events.Querier, e *events.Event, d ProjectCreated) error {
		_, err := q.ExecContext(ctx, `INSERT INTO projects (slug, name, everyone_member, created_by, created_at) VALUES (?, ?, 0, ?, ?)`,
			d.Project, d.Name, e.Actor, e.OccurredAt)
		return err
	})
	events.On(reg, p, t.RoleGranted, func(ctx context.Context, q events.Querier, e *events.Event, d RoleGranted) error {
		_, err := q.ExecContext(ctx, `INSERT INTO project_roles (project, user_id, role, granted_by, granted_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (project, user_id) DO UPDATE SET role = excluded.role, granted_by = excluded.granted_by, granted_at = excluded.granted_at`,
			d.Project, d.Person, d.Role, d.By, e.OccurredAt)
		return err
	})
	events.On(reg, p, t.RoleRevoked, func(ctx context.Context, q events.Querier, e *events.Event, d RoleRevoked) error {
		_, err := q.ExecContext(ctx, `DELETE FROM project_roles WHERE project = ? AND user_id = ?`, d.Project, d.Person)
		return err
	})
	events.On(reg, p, t.EveryoneSet, func(ctx context.Context, q events.Querier, e *events.Event, d EveryoneSet) error {
		// The default project gets its row from the first event that
		// changes it.
		_, err := q.ExecContext(ctx, `INSERT INTO projects (slug, name, everyone_member) VALUES (?, ?, ?)
			ON CONFLICT (slug) DO UPDATE SET everyone_member = excluded.everyone_member`,
			d.Project, DefaultName, d.On)
		return err
	})
	return t
}

// Project is one project as the projection has it.
type Project struct {
	Slug           string `json:"slug"`
	Name           string `json:"name"`
	EveryoneMember bool   `json:"everyone_member"`
	CreatedBy      string `json:"created_by"`
	CreatedAt      string `json:"created_at"`
}

func implicitDefault() Project {
	return Project{Slug: Default, Name: DefaultName, EveryoneMember: true}
}

// Get reads a project; the default project exists without a row.
func Get(ctx context.Context, q events.Querier, slug string) (Project, error) {
	p := Project{Slug: slug}
	err := q.QueryRowContext(ctx, `SELECT name, everyone_member, created_by, created_at FROM projects WHERE slug = ?`, slug).
		Scan(&p.Name, &p.EveryoneMember, &p.CreatedBy, &p.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		if slug == Default {
			return implicitDefault(), nil
		}
		return p, errs.E(errs.NotFound, "There is no project %q, or you may not see it.", slug)
	}
	if err != nil {
		return p, fmt.Errorf("read project: %w", err)
	}
	return p, nil
}

// List lists every project, the default one first, then by name.
func List(ctx context.Context, q events.Querier) ([]Project, error) {
	rows, err := q.QueryContext(ctx, `SELECT slug, name, everyone_member, created_by, created_at FROM projects
		ORDER BY slug <> ?, name, slug`, Default)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	defer rows.Close()
	var out []Project
	seenDefault := false
	for rows.Next() {
		var p Project
		if err := rows.Scan(&p.Slug, &p.Name, &p.EveryoneMember, &p.CreatedBy, &p.CreatedAt); err != nil {
			return nil, err
		}
		seenDefault = seenDefault || p.Slug == Default
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !seenDefault {
		out = append([]Project{implicitDefault()}, out...)
	}
	return out, nil
}

// Holder is one person's granted role in a project.
type Holder struct {
	Person    string `json:"person"`
	Role      string `json:"role"`
	GrantedBy string `json:"granted_by"`
	GrantedAt string `json:"granted_at"`
}

// Holders lists the roles granted in a project, highest role first.
func Holders(ctx context.Context, q events.Querier, project string) ([]Holder, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_id, role, granted_by, granted_at FROM project_roles WHERE project = ?
		ORDER BY CASE role WHEN 'owner' THEN 0 WHEN 'member' THEN 1 WHEN 'reporter' THEN 2 ELSE 3 END, user_id`, project)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	defer rows.Close()
	out := []Holder{}
	for rows.Next() {
		var m Holder
		if err := rows.Scan(&m.Person, &m.Role, &m.GrantedBy, &m.GrantedAt); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// History is the project's own events (creation, roles, settings) and
// every event of its tickets, newest first, at most limit.
func History(ctx context.Context, q events.Querier, project string, limit int) ([]events.Event, error) {
	var out []events.Event
	// Positions first (two indexed lookups), then the events one by one.
	rows, err := q.QueryContext(ctx, `SELECT position FROM events WHERE aggregate_type = 'project' AND aggregate_id = ?
		UNION ALL
		SELECT e.position FROM events e JOIN tickets t ON e.aggregate_type = 'ticket' AND e.aggregate_id = CAST(t.id AS TEXT)
		WHERE t.project = ?
		ORDER BY 1 DESC LIMIT ?`, project, project, limit)
	if err != nil {
		return nil, fmt.Errorf("project history: %w", err)
	}
	var ps []int64
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, err
		}
		ps = append(ps, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, p := range ps {
		e, err := events.Get(ctx, q, p)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Service runs the project commands through the writer.
type Service struct {
	Writer *events.Writer
	Types  Types
}

// personExists checks person is registered (their aggregate has events).
func personExists(ctx context.Context, tx *events.Tx, person string) error {
	v, _, err := tx.Last(ctx, "user", person)
	if err != nil {
		return err
	}
	if v == 0 {
		return errs.Field("person", "There is nobody called %q.", person)
	}
	return nil
}

// Create makes a project (project_created); only a site admin may.
func (s *Service) Create(ctx context.Context, actor, slug, name, commandID string) error {
	slug, name = strings.TrimSpace(slug), strings.TrimSpace(name)
	fields := map[string]string{}
	if err := ValidSlug(slug); err != nil {
		fields["slug"] = errs.Fields(err)["slug"]
	}
	if name == "" {
		fields["name"] = "A project needs a name."
	} else if err := input.Line("name", "The name", name, MaxName); err != nil {
		fields["name"] = errs.Fields(err)["name"]
	}
	_, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: actor,
		Fingerprint: events.Fingerprint("create_project", slug, name),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if err := Can(ctx, tx.Q(), actor, CreateProject, ""); err != nil {
				return nil, err
			}
			if len(fields) > 0 {
				return nil, &errs.Error{Code: errs.Invalid, Message: "Please fix the fields marked below.", Fields: fields}
			}
			if _, err := Get(ctx, tx.Q(), slug); err == nil {
				return nil, errs.Field("slug", "There is a project called %s already.", slug)
			} else if errs.Code(err) != errs.NotFound {
				return nil, err
			}
			v, _, err := tx.Last(ctx, Aggregate, slug)
			if err != nil {
				return nil, err
			}
			return []events.Change{{AggregateType: Aggregate, AggregateID: slug, Expect: v,
				Events: []events.Pending{s.Types.Created.New(ProjectCreated{Project: slug, Name: name})}}}, nil
		},
	})
	return err
}

// Grant gives person role in project (project_role_granted), replacing the
// role they held there; owners and admins may.
func (s *Service) Grant(ctx context.Context, actor, project, person, role, commandID string) error {
	r, rerr := ParseRole(role)
	_, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: actor,
		Fingerprint: events.Fingerprint("grant_project_role", project, person, role),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if err := Can(ctx, tx.Q(), actor, ManageRoles, project); err != nil {
				return nil, err
			}
			if rerr != nil {
				return nil, rerr
			}
			if err := personExists(ctx, tx, person); err != nil {
				return nil, err
			}
			ms, err := Holders(ctx, tx.Q(), project)
			if err != nil {
				return nil, err
			}
			for _, m := range ms {
				if m.Person == person && m.Role == r.String() {
					return nil, errs.Field("role", "%s is %s already.", person, article(r))
				}
			}
			return s.change(ctx, tx, project, s.Types.RoleGranted.New(RoleGranted{Project: project, Person: person, Role: r.String(), By: actor, Reason: "grant"}))
		},
	})
	return err
}

// GrantEvent is the event that gives a person a role in project when they
// join through an invitation made by by (internal/auth appends it).
func (s Types) GrantEvent(project, person string, role Role, by string) events.Pending {
	return s.RoleGranted.New(RoleGranted{Project: project, Person: person, Role: role.String(), By: by, Reason: "invitation"})
}

// Revoke takes person's role in project away (project_role_revoked);
// owners and admins may.
func (s *Service) Revoke(ctx context.Context, actor, project, person, commandID string) error {
	_, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: actor,
		Fingerprint: events.Fingerprint("revoke_project_role", project, person),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if err := Can(ctx, tx.Q(), actor, ManageRoles, project); err != nil {
				return nil, err
			}
			var role string
			err := tx.Q().QueryRowContext(ctx, `SELECT role FROM project_roles WHERE project = ? AND user_id = ?`, project, person).Scan(&role)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, errs.Field("person", "%s holds no role in this project.", person)
			}
			if err != nil {
				return nil, fmt.Errorf("read project role: %w", err)
			}
			return s.change(ctx, tx, project, s.Types.RoleRevoked.New(RoleRevoked{Project: project, Person: person, Role: role, By: actor}))
		},
	})
	return err
}

// SetEveryone turns "everyone signed in is a member" on or off
// (project_setting_set); owners and admins may.
func (s *Service) SetEveryone(ctx context.Context, actor, project string, on bool, commandID string) error {
	_, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: actor,
		Fingerprint: events.Fingerprint("set_everyone_member", project, fmt.Sprint(on)),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if err := Can(ctx, tx.Q(), actor, ManageRoles, project); err != nil {
				return nil, err
			}
			p, err := Get(ctx, tx.Q(), project)
			if err != nil {
				return nil, err
			}
			if p.EveryoneMember == on {
				return nil, errs.Field("everyone", "The setting is like that already.")
			}
			return s.change(ctx, tx, project, s.Types.EveryoneSet.New(EveryoneSet{Project: project, On: on, By: actor}))
		},
	})
	return err
}

func (s *Service) change(ctx context.Context, tx *events.Tx, project string, e events.Pending) ([]events.Change, error) {
	v, _, err := tx.Last(ctx, Aggregate, project)
	if err != nil {
		return nil, err
	}
	return []events.Change{{AggregateType: Aggregate, AggregateID: project, Expect: v, Events: []events.Pending{e}}}, nil
}
