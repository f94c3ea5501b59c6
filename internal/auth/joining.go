package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
)

// Joining: who may register (the site's registration mode), invitations,
// and the site admin role. Every grant, revocation, mode and invitation is
// an event; an invitation's secret is not (only its SHA-256, outside the
// log, in invitation_secrets).

// RoleAdmin is the one site role: admins run the admin page (people,
// invitations, the registration mode, other admins).
const RoleAdmin = "admin"

// System is the actor of what the operator does (web admin) and the
// granter of the first person's admin role.
const System = "system"

// RoleGranted is the payload of role_granted. By is who granted it: the
// event's actor, or system (the first person, `web admin create-admin`),
// or the admin who made the invitation the person joined through.
type RoleGranted struct {
	Person string `json:"person"`
	Role   string `json:"role"`
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"` // first_person, operator, invitation, admin
}

// RoleRevoked is the payload of role_revoked.
type RoleRevoked struct {
	Person string `json:"person"`
	Role   string `json:"role"`
	By     string `json:"by"`
}

// RegistrationModeSet is the payload of registration_mode_set.
type RegistrationModeSet struct {
	Mode string `json:"mode"`
	By   string `json:"by"`
}

// InvitationCreated is the payload of invitation_created: never the secret.
type InvitationCreated struct {
	Invitation string `json:"invitation"`
	Role       string `json:"role"` // member or admin; with a project, the role in it
	// Project, when set, is the project the person joins with Role
	// (internal/access); invitations from before projects have none.
	Project   string `json:"project,omitempty"`
	Note      string `json:"note,omitempty"`
	ExpiresAt string `json:"expires_at"`
}

// InvitationUsed is the payload of invitation_used.
type InvitationUsed struct {
	Invitation string `json:"invitation"`
	Person     string `json:"person"`
}

// InvitationRevoked is the payload of invitation_revoked.
type InvitationRevoked struct {
	Invitation string `json:"invitation"`
}

// The aggregates of the joining events.
const (
	SiteAggregate       = "site"
	SiteRegistration    = "registration"
	InvitationAggregate = "invitation"
)

// RegistrationInvite admits only people with an invitation (and the
// first person, on a site that has nobody yet).
const RegistrationInvite RegistrationMode = "invite"

// ParseMode reads a registration mode.
func ParseMode(s string) (RegistrationMode, error) {
	switch m := RegistrationMode(s); m {
	case RegistrationOpen, RegistrationInvite, RegistrationClosed:
		return m, nil
	}
	return "", errs.Field("mode", "Choose open, invite or closed.")
}

func registerJoining(reg *events.Registry, t *Types) {
	t.RoleGranted = events.Define[RoleGranted](reg, "role_granted", 1)
	t.RoleRevoked = events.Define[RoleRevoked](reg, "role_revoked", 1)
	t.ModeSet = events.Define[RegistrationModeSet](reg, "registration_mode_set", 1)
	t.InvitationCreated = events.Define[InvitationCreated](reg, "invitation_created", 1)
	t.InvitationUsed = events.Define[InvitationUsed](reg, "invitation_used", 1)
	t.InvitationRevoked = events.Define[InvitationRevoked](reg, "invitation_revoked", 1)

	p := reg.NewProjection("roles", "roles")
	events.On(reg, p, t.RoleGranted, func(ctx context.Context, q events.Querier, e *events.Event, d RoleGranted) error {
		_, err := q.ExecContext(ctx, `INSERT INTO roles (user_id, role, granted_by, granted_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (user_id, role) DO UPDATE SET granted_by = excluded.granted_by, granted_at = excluded.granted_at`,
			d.Person, d.Role, d.By, e.OccurredAt)
		return err
	})
	events.On(reg, p, t.RoleRevoked, func(ctx context.Context, q events.Querier, e *events.Event, d RoleRevoked) error {
		_, err := q.ExecContext(ctx, `DELETE FROM roles WHERE user_id = ? AND role = ?`, d.Person, d.Role)
		return err
	})

	s := reg.NewProjection("site_settings", "site_settings")
	events.On(reg, s, t.ModeSet, func(ctx context.Context, q events.Querier, e *events.Event, d RegistrationModeSet) error {
		_, err := q.ExecContext(ctx, `INSERT INTO site_settings (name, value, set_by, set_at) VALUES ('registration', ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value, set_by = excluded.set_by, set_at = excluded.set_at`,
			d.Mode, d.By, e.OccurredAt)
		return err
	})

	i := reg.NewProjection("invitations", "invitations")
	events.On(reg, i, t.InvitationCreated, func(ctx context.Context, q events.Querier, e *events.Event, d InvitationCreated) error {
		_, err := q.ExecContext(ctx, `INSERT INTO invitations (id, role, note, created_by, created_at, expires_at, project) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			d.Invitation, d.Role, d.Note, e.Actor, e.OccurredAt, d.ExpiresAt, d.Project)
		return err
	})
	events.On(reg, i, events.ErasedEvent, func(ctx context.Context, q events.Querier, e *events.Event, d events.Erasure) error {
		for _, x := range d.Positions {
			if x.Type == "invitation_created" {
				if _, err := q.ExecContext(ctx, `UPDATE invitations SET note = '' WHERE id = ?`, keptAuth(x).Invitation); err != nil {
					return err
				}
			}
		}
		return nil
	})
	events.On(reg, i, t.InvitationUsed, func(ctx context.Context, q events.Querier, e *events.Event, d InvitationUsed) error {
		_, err := q.ExecContext(ctx, `UPDATE invitations SET state = 'used', closed_by = ?, closed_at = ? WHERE id = ?`,
			d.Person, e.OccurredAt, d.Invitation)
		return err
	})
	events.On(reg, i, t.InvitationRevoked, func(ctx context.Context, q events.Querier, e *events.Event, d InvitationRevoked) error {
		_, err := q.ExecContext(ctx, `UPDATE invitations SET state = 'revoked', closed_by = ?, closed_at = ? WHERE id = ?`,
			e.Actor, e.OccurredAt, d.Invitation)
		return err
	})
}

// IsAdmin says whether person holds the site admin role.
func IsAdmin(ctx context.Context, q events.Querier, person string) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM roles WHERE user_id = ? AND role = 'admin'`, person).Scan(&n); err != nil {
		return false, fmt.Errorf("read roles: %w", err)
	}
	return n > 0, nil
}

// Roles maps each person holding a site role to their roles.
func Roles(ctx context.Context, q events.Querier) (map[string][]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_id, role FROM roles ORDER BY user_id, role`)
	if err != nil {
		return nil, fmt.Errorf("read roles: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var u, r string
		if err := rows.Scan(&u, &r); err != nil {
			return nil, err
		}
		out[u] = append(out[u], r)
	}
	return out, rows.Err()
}

// ModeSetting is the site's stored registration mode and who set it.
type ModeSetting struct {
	Mode  RegistrationMode // "" when never set
	SetBy string
	SetAt string
}

// StoredMode reads the registration mode the log last set.
func StoredMode(ctx context.Context, q events.Querier) (ModeSetting, error) {
	var s ModeSetting
	err := q.QueryRowContext(ctx, `SELECT value, set_by, set_at FROM site_settings WHERE name = 'registration'`).Scan(&s.Mode, &s.SetBy, &s.SetAt)
	if errors.Is(err, sql.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read registration mode: %w", err)
	}
	return s, nil
}

func countPeople(ctx context.Context, q events.Querier) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE imported_from = ''`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count people: %w", err)
	}
	return n, nil
}

// EffectiveMode is who may register now: the process's override (serve
// --registration) if any, else the mode the log last set, else open for a
// site with nobody yet (its first person) and invite after that.
func EffectiveMode(ctx context.Context, q events.Querier, override RegistrationMode) (RegistrationMode, error) {
	if override != "" {
		return override, nil
	}
	s, err := StoredMode(ctx, q)
	if err != nil || s.Mode != "" {
		return s.Mode, err
	}
	n, err := countPeople(ctx, q)
	if err != nil {
		return "", err
	}
	if n == 0 {
		return RegistrationOpen, nil
	}
	return RegistrationInvite, nil
}

const registrationInvite = "Registration on this site is by invitation: ask an admin for an invitation link."

// admitted decides, inside the writer's transaction, whether someone may
// register without an invitation. The first person may, unless the site is
// closed; after that the mode decides.
func admitted(ctx context.Context, q events.Querier, override RegistrationMode) (first bool, err error) {
	n, err := countPeople(ctx, q)
	if err != nil {
		return false, err
	}
	mode, err := EffectiveMode(ctx, q, override)
	if err != nil {
		return false, err
	}
	switch {
	case mode == RegistrationClosed:
		return false, errs.E(errs.Forbidden, registrationClosed)
	case n == 0:
		return true, nil
	case mode == RegistrationInvite:
		return false, errs.E(errs.Forbidden, registrationInvite)
	}
	return false, nil
}

// requireAdmin refuses anyone who is not an admin (system, the operator,
// always passes): the table's site_admin action (internal/access).
func requireAdmin(ctx context.Context, q events.Querier, actor string) error {
	return access.Can(ctx, q, actor, access.SiteAdmin, "")
}

// SetMode sets the site's registration mode (registration_mode_set), by
// an admin or system.
func (s *Service) SetMode(ctx context.Context, actor string, mode RegistrationMode, commandID string) error {
	if _, err := ParseMode(string(mode)); err != nil {
		return err
	}
	_, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: actor,
		Fingerprint: events.Fingerprint("set_registration", string(mode)),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if err := requireAdmin(ctx, tx.Q(), actor); err != nil {
				return nil, err
			}
			cur, err := StoredMode(ctx, tx.Q())
			if err != nil {
				return nil, err
			}
			if cur.Mode == mode {
				return nil, errs.Field("mode", "Registration is %s already.", mode)
			}
			v, _, err := tx.Last(ctx, SiteAggregate, SiteRegistration)
			if err != nil {
				return nil, err
			}
			return []events.Change{{AggregateType: SiteAggregate, AggregateID: SiteRegistration, Expect: v,
				Events: []events.Pending{s.Types.ModeSet.New(RegistrationModeSet{Mode: string(mode), By: actor})}}}, nil
		},
	})
	return err
}

// Grant gives person the admin role (role_granted), by an admin or system.
func (s *Service) Grant(ctx context.Context, actor, person, commandID string) error {
	reason := "admin"
	if actor == System {
		reason = "operator"
	}
	_, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: actor,
		Fingerprint: events.Fingerprint("grant_role", person, RoleAdmin),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if err := requireAdmin(ctx, tx.Q(), actor); err != nil {
				return nil, err
			}
			v, _, err := tx.Last(ctx, Aggregate, person)
			if err != nil {
				return nil, err
			}
			if v == 0 {
				return nil, errs.E(errs.NotFound, "there is nobody called %s", person)
			}
			if ok, err := IsAdmin(ctx, tx.Q(), person); err != nil {
				return nil, err
			} else if ok {
				return nil, errs.E(errs.Conflict, "%s is an admin already", usernameOf(ctx, tx.Q(), person))
			}
			return []events.Change{{AggregateType: Aggregate, AggregateID: person, Expect: v,
				Events: []events.Pending{s.Types.RoleGranted.New(RoleGranted{Person: person, Role: RoleAdmin, By: actor, Reason: reason})}}}, nil
		},
	})
	return err
}

// Revoke takes the admin role from person (role_revoked), by an admin.
// The last admin keeps it: a site with no admin could invite nobody.
func (s *Service) Revoke(ctx context.Context, actor, person, commandID string) error {
	_, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: actor,
		Fingerprint: events.Fingerprint("revoke_role", person, RoleAdmin),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if err := requireAdmin(ctx, tx.Q(), actor); err != nil {
				return nil, err
			}
			ok, err := IsAdmin(ctx, tx.Q(), person)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, errs.E(errs.Conflict, "%s is not an admin", usernameOf(ctx, tx.Q(), person))
			}
			var n int
			if err := tx.Q().QueryRowContext(ctx, `SELECT COUNT(*) FROM roles WHERE role = 'admin'`).Scan(&n); err != nil {
				return nil, fmt.Errorf("count admins: %w", err)
			}
			if n <= 1 {
				return nil, errs.E(errs.Conflict, "%s is the last admin: make someone else an admin first", usernameOf(ctx, tx.Q(), person))
			}
			v, _, err := tx.Last(ctx, Aggregate, person)
			if err != nil {
				return nil, err
			}
			return []events.Change{{AggregateType: Aggregate, AggregateID: person, Expect: v,
				Events: []events.Pending{s.Types.RoleRevoked.New(RoleRevoked{Person: person, Role: RoleAdmin, By: actor})}}}, nil
		},
	})
	return err
}

// InviteTokenBytes is the size of an invitation's secret: 256 bits.
const InviteTokenBytes = 32

// Invite is what the invitation form sends.
type Invite struct {
	Role      string
	Project   string // a project's slug: Role is then a role in it
	Note      string
	ExpiresIn int // hours, 1 to 168
}

// NewInvitation is a created invitation: its id, and its secret, returned
// once and never stored.
type NewInvitation struct {
	ID, Token string
	Repeated  bool // the same command sent again: the secret is not known any more
}

// CreateInvitation makes a single-use invitation (invitation_created, no
// secret), by an admin. The secret's SHA-256 goes to invitation_secrets in
// the same transaction; the secret itself only to the caller.
func (s *Service) CreateInvitation(ctx context.Context, actor string, in Invite, commandID string) (NewInvitation, error) {
	fields := map[string]string{}
	if in.Project != "" {
		if _, err := access.ParseRole(in.Role); err != nil {
			fields["role"] = errs.Fields(err)["role"]
		}
	} else if in.Role != "member" && in.Role != RoleAdmin {
		fields["role"] = "Choose member or admin."
	}
	if in.ExpiresIn < 1 || in.ExpiresIn > 168 {
		fields["expires_in"] = "Choose from 1 to 168 hours (a week)."
	}
	in.Note = strings.TrimSpace(in.Note)
	if err := input.Line("note", "The note", in.Note, 200); err != nil {
		fields["note"] = errs.Fields(err)["note"]
	}
	if len(fields) > 0 {
		return NewInvitation{}, &errs.Error{Code: errs.Invalid, Message: "Please fix the fields marked below.", Fields: fields}
	}
	b := make([]byte, InviteTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return NewInvitation{}, fmt.Errorf("read random: %w", err)
	}
	inv := NewInvitation{ID: events.NewID()[:16], Token: base64.RawURLEncoding.EncodeToString(b)}
	res, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: actor,
		Fingerprint: events.Fingerprint("create_invitation", in.Role, in.Note, fmt.Sprint(in.ExpiresIn), in.Project),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if in.Project != "" {
				// Owners invite into their project; admins anywhere.
				if err := access.Can(ctx, tx.Q(), actor, access.Invite, in.Project); err != nil {
					return nil, err
				}
			} else if err := requireAdmin(ctx, tx.Q(), actor); err != nil {
				return nil, err
			}
			exp := tx.Now().Add(time.Duration(in.ExpiresIn) * time.Hour).UTC().Format(time.RFC3339Nano)
			return []events.Change{{AggregateType: InvitationAggregate, AggregateID: inv.ID, Expect: 0,
				Events: []events.Pending{s.Types.InvitationCreated.New(InvitationCreated{Invitation: inv.ID, Role: in.Role, Project: in.Project, Note: in.Note, ExpiresAt: exp})}}}, nil
		},
		After: func(ctx context.Context, q events.Querier, _ []events.Event) error {
			_, err := q.ExecContext(ctx, `INSERT INTO invitation_secrets (token_hash, invitation_id) VALUES (?, ?)`, tokenHash(inv.Token), inv.ID)
			return err
		},
	})
	if err != nil {
		return NewInvitation{}, err
	}
	if res.Repeated {
		return NewInvitation{ID: res.Events[0].AggregateID, Repeated: true}, nil
	}
	return inv, nil
}

// RevokeInvitation withdraws a pending invitation (invitation_revoked).
func (s *Service) RevokeInvitation(ctx context.Context, actor, id, commandID string) error {
	_, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: actor,
		Fingerprint: events.Fingerprint("revoke_invitation", id),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if err := requireAdmin(ctx, tx.Q(), actor); err != nil {
				return nil, err
			}
			var state string
			err := tx.Q().QueryRowContext(ctx, `SELECT state FROM invitations WHERE id = ?`, id).Scan(&state)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, errs.E(errs.NotFound, "there is no invitation %s", id)
			}
			if err != nil {
				return nil, fmt.Errorf("read invitation: %w", err)
			}
			if state != "pending" {
				return nil, errs.E(errs.Conflict, "invitation %s was %s already", id, state)
			}
			v, _, err := tx.Last(ctx, InvitationAggregate, id)
			if err != nil {
				return nil, err
			}
			return []events.Change{{AggregateType: InvitationAggregate, AggregateID: id, Expect: v,
				Events: []events.Pending{s.Types.InvitationRevoked.New(InvitationRevoked{Invitation: id})}}}, nil
		},
	})
	return err
}

var errBadInvitation = errs.E(errs.NotFound, "This invitation link is not valid: it was used already, it has expired, it was withdrawn, or it was never made. Ask an admin for a new one.")

// Invitation is one invitation as the projection has it.
type Invitation struct {
	ID, Role, Note, CreatedBy, CreatedAt, ExpiresAt, State, ClosedBy, ClosedAt string
	Project                                                                    string // "" for the site
}

// Expired says whether a pending invitation is past its time.
func (i Invitation) Expired(now time.Time) bool {
	t, err := time.Parse(time.RFC3339Nano, i.ExpiresAt)
	return err != nil || !now.Before(t)
}

// findInvitation returns the pending, unexpired invitation whose secret is
// token, or errBadInvitation.
func findInvitation(ctx context.Context, q events.Querier, token string, now time.Time) (Invitation, error) {
	var inv Invitation
	if token == "" || len(token) > 100 {
		return inv, errBadInvitation
	}
	err := q.QueryRowContext(ctx, `SELECT i.id, i.role, i.expires_at, i.state, i.project FROM invitation_secrets s
		JOIN invitations i ON i.id = s.invitation_id WHERE s.token_hash = ?`, tokenHash(token)).Scan(&inv.ID, &inv.Role, &inv.ExpiresAt, &inv.State, &inv.Project)
	if errors.Is(err, sql.ErrNoRows) {
		return inv, errBadInvitation
	}
	if err != nil {
		return inv, fmt.Errorf("look up invitation: %w", err)
	}
	if inv.State != "pending" || inv.Expired(now) {
		return inv, errBadInvitation
	}
	return inv, nil
}

// CheckInvitation returns the invitation a link's secret is for, or
// not_found when it was used, revoked, has expired or never existed.
func (s *Service) CheckInvitation(ctx context.Context, token string) (Invitation, error) {
	return findInvitation(ctx, s.DB.Read, token, s.now())
}

// Invitations lists every invitation, newest first.
func Invitations(ctx context.Context, q events.Querier) ([]Invitation, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, role, note, created_by, created_at, expires_at, state, closed_by, closed_at, project
		FROM invitations ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list invitations: %w", err)
	}
	defer rows.Close()
	var out []Invitation
	for rows.Next() {
		var i Invitation
		if err := rows.Scan(&i.ID, &i.Role, &i.Note, &i.CreatedBy, &i.CreatedAt, &i.ExpiresAt, &i.State, &i.ClosedBy, &i.ClosedAt, &i.Project); err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

// projectGrant is the change that gives person the role an invitation into
// a project names, granted by whoever made the invitation.
func projectGrant(ctx context.Context, tx *events.Tx, t access.Types, inv Invitation, person string) (events.Change, error) {
	role, err := access.ParseRole(inv.Role)
	if err != nil {
		return events.Change{}, err
	}
	var by string
	if err := tx.Q().QueryRowContext(ctx, `SELECT created_by FROM invitations WHERE id = ?`, inv.ID).Scan(&by); err != nil {
		return events.Change{}, fmt.Errorf("read invitation: %w", err)
	}
	v, _, err := tx.Last(ctx, access.Aggregate, inv.Project)
	if err != nil {
		return events.Change{}, err
	}
	return events.Change{AggregateType: access.Aggregate, AggregateID: inv.Project, Expect: v,
		Events: []events.Pending{t.GrantEvent(inv.Project, person, role, by)}}, nil
}

// InviteToProject makes an invitation into project with role (owners of
// the project and admins) and returns its secret, "" when the same command
// was sent again (the secret is not known any more).
func (s *Service) InviteToProject(ctx context.Context, actor, project, role, note string, hours int, commandID string) (string, error) {
	inv, err := s.CreateInvitation(ctx, actor, Invite{Role: role, Project: project, Note: note, ExpiresIn: hours}, commandID)
	return inv.Token, err
}
