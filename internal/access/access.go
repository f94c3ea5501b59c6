// Package access decides who may do what: projects, the roles people hold
// in them, and the one table of the least role each command needs. Every
// command calls Can inside the writer's transaction, so a role revoked a
// moment ago is refused at once.
package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"braid/internal/errs"
	"braid/internal/events"
)

// Role is what a person may do in a project; higher roles may do
// everything lower ones may.
type Role int

// The roles, lowest first. Admin is the site admin role (internal/auth),
// above every project; None is someone with no role.
const (
	None Role = iota
	Viewer
	Reporter
	Member
	Owner
	Admin
)

var roleNames = [...]string{"none", "viewer", "reporter", "member", "owner", "admin"}

func (r Role) String() string {
	if r < None || r > Admin {
		return "none"
	}
	return roleNames[r]
}

// ProjectRoles are the roles a person may be granted in a project, highest
// first (Admin is a site role, granted on /admin).
var ProjectRoles = []Role{Owner, Member, Reporter, Viewer}

// ParseRole reads a project role by name.
func ParseRole(s string) (Role, error) {
	for _, r := range ProjectRoles {
		if r.String() == s {
			return r, nil
		}
	}
	return None, errs.Field("role", "Choose owner, member, reporter or viewer.")
}

// Action names a command (or a read) that Table governs.
type Action string

// Every action of the site that touches a project or the site's people.
const (
	Read           Action = "read"             // see the project, its tickets and its history
	Watch          Action = "watch"            // watch or unwatch one of its tickets
	Open           Action = "open"             // open a ticket in it
	Comment        Action = "comment"          // comment on one of its tickets
	EditOwnComment Action = "edit_own_comment" // edit or delete a comment one wrote
	EditOwnTicket  Action = "edit_own_ticket"  // edit title, body, labels of a ticket one opened
	Edit           Action = "edit"             // edit anyone's ticket
	Assign         Action = "assign"
	Close          Action = "close"
	Reopen         Action = "reopen"
	ManageRoles    Action = "manage_roles"    // grant and revoke roles, the everyone-is-a-member setting
	Invite         Action = "invite"          // invite a person into the project
	ManageWebhooks Action = "manage_webhooks" // see, create, change and disable the project's webhooks
	CreateProject  Action = "create_project"
	SiteAdmin      Action = "site_admin" // the admin page: site invitations, registration, admins

	// Erase removes personal data from the log (internal/erase, docs/privacy.md);
	// an author erasing their own comment needs EraseOwnComment in its project.
	Erase           Action = "erase"
	EraseOwnComment Action = "erase_own_comment"

	// Custom fields and templates (internal/fields).
	ManageFields    Action = "manage_fields"    // define, change and remove the project's custom fields
	ManageTemplates Action = "manage_templates" // define and remove the project's ticket templates
)

// Table is the least role each action needs. It is the only place that
// says who may do what; docs/security.md prints it.
var Table = map[Action]Role{
	Read:           Viewer,
	Watch:          Viewer,
	Open:           Reporter,
	Comment:        Reporter,
	EditOwnComment: Reporter,
	EditOwnTicket:  Reporter,
	Edit:           Member,
	Assign:         Member,
	Close:          Member,
	Reopen:         Member,
	ManageRoles:    Owner,
	Invite:         Owner,
	ManageWebhooks: Owner,
	CreateProject:  Admin,
	SiteAdmin:      Admin,

	Erase:           Admin,
	EraseOwnComment: Reporter,

	ManageFields:    Owner,
	ManageTemplates: Owner,
}

// System is the operator's actor (web admin), allowed everything.
const System = "system"

// siteAdmin reads the site admin role from internal/auth's roles table.
func siteAdmin(ctx context.Context, q events.Querier, person string) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM roles WHERE user_id = ? AND role = 'admin'`, person).Scan(&n); err != nil {
		return false, fmt.Errorf("read roles: %w", err)
	}
	return n > 0, nil
}

// RoleIn is person's role in project: admin for a site admin, else the
// higher of the role granted to them and member when the project lets
// everyone signed in be a member. A project that does not exist gives None,
// to admins too.
func RoleIn(ctx context.Context, q events.Querier, person, project string) (Role, error) {
	if person == "" {
		return None, nil
	}
	p, err := Get(ctx, q, project)
	if errs.Code(err) == errs.NotFound {
		return None, nil
	}
	if err != nil {
		return None, err
	}
	if person == System {
		return Admin, nil
	}
	if ok, err := siteAdmin(ctx, q, person); err != nil || ok {
		return Admin, err
	}
	role := None
	if p.EveryoneMember {
		role = Member
	}
	var name string
	err = q.QueryRowContext(ctx, `SELECT role FROM project_roles WHERE project = ? AND user_id = ?`, project, person).Scan(&name)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return None, fmt.Errorf("read project role: %w", err)
	default:
		if r, _ := ParseRole(name); r > role {
			role = r
		}
	}
	return role, nil
}

// Can refuses actor the action in project unless their role there is at
// least Table[action]. A read refused is not_found (a page of a project one
// may not see is not there); a command refused is forbidden, whoever asks.
// A project that does not exist is not_found. project "" is the site.
func Can(ctx context.Context, q events.Querier, actor string, action Action, project string) error {
	need, ok := Table[action]
	if !ok {
		return fmt.Errorf("access: no rule for %q", action) // a programming error: internal
	}
	var role Role
	var err error
	if project != "" {
		if _, err := Get(ctx, q, project); err != nil {
			return err
		}
	}
	if project == "" {
		if actor == System {
			role = Admin
		} else if ok, e := siteAdmin(ctx, q, actor); e != nil {
			err = e
		} else if ok {
			role = Admin
		}
	} else {
		role, err = RoleIn(ctx, q, actor, project)
	}
	if err != nil {
		return err
	}
	if role >= need {
		return nil
	}
	if action == Read {
		return errs.E(errs.NotFound, "There is no project %q, or you may not see it.", project)
	}
	if need == Admin {
		return errs.E(errs.Forbidden, "Only a site admin may do this.")
	}
	if role == None {
		return errs.E(errs.Forbidden, "You have no role in this project; this needs %s or above.", article(need))
	}
	return errs.E(errs.Forbidden, "You are %s in this project; this needs %s or above.", article(role), article(need))
}

func article(r Role) string {
	switch r {
	case Owner, Admin:
		return "an " + r.String()
	case None:
		return "nobody"
	}
	return "a " + r.String()
}

// TicketProject is the project ticket belongs to (the tickets table's
// project column, kept by internal/tickets); not_found when there is no
// such ticket.
func TicketProject(ctx context.Context, q events.Querier, ticket int64) (string, error) {
	var p string
	err := q.QueryRowContext(ctx, `SELECT project FROM tickets WHERE id = ?`, ticket).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errs.E(errs.NotFound, "There is no ticket #%d.", ticket)
	}
	if err != nil {
		return "", fmt.Errorf("read ticket's project: %w", err)
	}
	return p, nil
}

// CanTicket is Can on the project of ticket; reading a ticket in a
// project the actor may not see is not_found, like one that does not exist.
func CanTicket(ctx context.Context, q events.Querier, actor string, action Action, ticket int64) error {
	p, err := TicketProject(ctx, q, ticket)
	if err != nil {
		return err
	}
	if err := Can(ctx, q, actor, action, p); err != nil {
		if errs.Code(err) == errs.NotFound {
			return errs.E(errs.NotFound, "There is no ticket #%d.", ticket)
		}
		return err
	}
	return nil
}

// Visible lists the projects person may read; all is true when that is
// every project (always for a site admin).
func Visible(ctx context.Context, q events.Querier, person string) (slugs []string, all bool, err error) {
	if person == System {
		return nil, true, nil
	}
	if ok, err := siteAdmin(ctx, q, person); err != nil || ok {
		return nil, ok, err
	}
	ps, err := List(ctx, q)
	if err != nil {
		return nil, false, err
	}
	for _, p := range ps {
		r, err := RoleIn(ctx, q, person, p.Slug)
		if err != nil {
			return nil, false, err
		}
		if r >= Viewer {
			slugs = append(slugs, p.Slug)
		}
	}
	// Every ticket is in a project that exists: someone who sees them all
	// sees every ticket, and the list may use its precomputed counts.
	return slugs, len(slugs) == len(ps), nil
}

// Allowed lists the projects where person may do action, for a form's
// select.
func Allowed(ctx context.Context, q events.Querier, person string, action Action) ([]Project, error) {
	ps, err := List(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []Project
	for _, p := range ps {
		r, err := RoleIn(ctx, q, person, p.Slug)
		if err != nil {
			return nil, err
		}
		if r >= Table[action] {
			out = append(out, p)
		}
	}
	return out, nil
}
