// Package auth holds people: registration (a user_registered event in the
// log, the bcrypt hash outside it), sign-in with rate limiting, sessions and
// the middleware that knows who is asking.
package auth

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"time"

	"golang.org/x/crypto/bcrypt"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
)

// Registered is the payload of user_registered.
type Registered struct {
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
}

// Types are the event types this package defines.
type Types struct {
	Registered         events.Type[Registered]
	DisplayNameChanged events.Type[DisplayNameChanged]
	UsernameChanged    events.Type[UsernameChanged]
	PasswordChanged    events.Type[PasswordChanged]
	PasswordReset      events.Type[PasswordReset]

	// Joining (joining.go).
	RoleGranted       events.Type[RoleGranted]
	RoleRevoked       events.Type[RoleRevoked]
	ModeSet           events.Type[RegistrationModeSet]
	InvitationCreated events.Type[InvitationCreated]
	InvitationUsed    events.Type[InvitationUsed]
	InvitationRevoked events.Type[InvitationRevoked]

	// Passkeys (passkeys.go).
	PasskeyAdded   events.Type[PasskeyAdded]
	PasskeyRemoved events.Type[PasskeyRemoved]

	// Personal access tokens (tokens.go).
	TokenCreated events.Type[TokenCreated]
	TokenRevoked events.Type[TokenRevoked]
}

// Register adds the people's event types and the users projection to reg.
func Register(reg *events.Registry) Types {
	t := Types{
		Registered:         events.Define[Registered](reg, "user_registered", 1),
		DisplayNameChanged: events.Define[DisplayNameChanged](reg, "display_name_changed", 1),
		PasswordChanged:    events.Define[PasswordChanged](reg, "password_changed", 1),
		PasswordReset:      events.Define[PasswordReset](reg, "password_reset", 1),
		UsernameChanged:    events.Define[UsernameChanged](reg, "username_changed", 1),
	}
	p := reg.NewProjection("users", "users", "former_usernames")
	// The aggregate id is the person's id: an opaque one for people
	// registered since person ids came in, the username itself for those
	// registered before (people_lookup.go).
	events.On(reg, p, t.Registered, func(ctx context.Context, q events.Querier, e *events.Event, d Registered) error {
		username := d.Username
		if username == "" { // an erased registration (internal/erase): the id stands in
			username = e.AggregateID
		}
		_, err := q.ExecContext(ctx, `INSERT INTO users (id, username, display_name, registered_at) VALUES (?, ?, ?, ?)`,
			e.AggregateID, username, d.DisplayName, e.OccurredAt)
		return err
	})
	events.On(reg, p, t.UsernameChanged, applyUsernameChanged)
	events.On(reg, p, t.DisplayNameChanged, func(ctx context.Context, q events.Querier, e *events.Event, d DisplayNameChanged) error {
		_, err := q.ExecContext(ctx, `UPDATE users SET display_name = ? WHERE id = ?`, d.DisplayName, e.AggregateID)
		return err
	})
	// An erased person (internal/erase, scope person) keeps their id, which
	// stands in for their username; their names and former names go.
	events.On(reg, p, events.ErasedEvent, func(ctx context.Context, q events.Querier, e *events.Event, d events.Erasure) error {
		if d.Scope != "person" {
			return nil
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM former_usernames WHERE user_id = ?`, d.Target); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, `UPDATE users SET username = id, display_name = '', erased_at = ?, erased_by_role = ? WHERE id = ?`,
			e.OccurredAt, d.ByRole, d.Target)
		return err
	})
	registerJoining(reg, &t)
	registerPasskeys(reg, &t)
	registerTokens(reg, &t)
	return t
}

var usernameRE = regexp.MustCompile(`^[a-z0-9_-]{3,32}$`)

// checkUsername says what is wrong with a new username, or "".
func checkUsername(u string) string {
	if !usernameRE.MatchString(u) {
		return "Use 3 to 32 characters: lowercase letters a-z, digits, _ or -."
	}
	if LooksLikeID(u) {
		return "This has the shape of a person id (p_ and 20 letters and digits); choose another."
	}
	return ""
}

// Registration is what the register form sends.
type Registration struct {
	Username, DisplayName, Password, Confirmation string
	// Invitation is the secret of the invitation link registered through,
	// or "" for registration without one (which the mode must allow).
	Invitation string
}

// Validate checks the form, naming each field at fault.
func (r Registration) Validate() error {
	fields := map[string]string{}
	if m := checkUsername(r.Username); m != "" {
		fields["username"] = m
	}
	if err := input.Line("display_name", "The display name", r.DisplayName, 64); err != nil {
		fields["display_name"] = errs.Fields(err)["display_name"]
	}
	switch {
	case len(r.Password) < 8:
		fields["password"] = "Use at least 8 characters."
	case len(r.Password) > 72:
		fields["password"] = fmt.Sprintf("Passwords are limited to 72 bytes (bcrypt's limit); yours is %d. Nothing is cut off silently, so choose a shorter one.", len(r.Password))
	}
	if r.Confirmation != r.Password {
		fields["password_confirmation"] = "The two passwords differ."
	}
	if len(fields) > 0 {
		return &errs.Error{Code: errs.Invalid, Message: "Please fix the fields marked below.", Fields: fields}
	}
	return nil
}

// Service runs the people's commands.
type Service struct {
	DB     *events.DB
	Writer *events.Writer
	Types  Types
	Cost   int              // bcrypt cost; 0 means bcrypt.DefaultCost
	Now    func() time.Time // the clock for reset links; nil means time.Now
	// Override is the registration mode serve --registration set for this
	// process, or "" for the one the log holds.
	Override RegistrationMode
	// Projects are the project event types, for the role an invitation
	// into a project grants (internal/access).
	Projects access.Types
}

// SignUp registers a user: the event goes to the log, the password hash to
// the credentials table, in the same transaction. repeated is true when the
// same registration (username and display name, under the same command_id)
// had already been made: nothing was written now, the password was not
// checked, and the caller must check it (Authenticate) before trusting
// whoever sent it.
func (s *Service) SignUp(ctx context.Context, r Registration, commandID string) (id string, repeated bool, err error) {
	if err := r.Validate(); err != nil {
		return "", false, err
	}
	if r.DisplayName == "" {
		r.DisplayName = r.Username
	}
	cost := s.Cost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	// bcrypt is slow on purpose: hash before the writer, never inside it.
	hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), cost)
	if err != nil {
		return "", false, fmt.Errorf("hash password: %w", err)
	}
	id, err = NewPersonID()
	if err != nil {
		return "", false, err
	}
	fp := events.Fingerprint("register", r.Username, r.DisplayName)
	if r.Invitation != "" {
		fp = events.Fingerprint("register", r.Username, r.DisplayName, base64.RawURLEncoding.EncodeToString(tokenHash(r.Invitation)))
	}
	res, err := s.signUp(ctx, r, commandID, id, fp, hash, nil, nil)
	if errs.Code(err) == errs.Conflict && commandID != "" {
		// The same form sent again (a double click, a retry) was made under
		// the id drawn the first time: ask again as that id, and the writer
		// answers with the first result if it is the same registration.
		var prior string
		if qerr := s.DB.Read.QueryRowContext(ctx, `SELECT aggregate_id FROM events WHERE command_id = ? AND event_type = 'user_registered'`,
			commandID).Scan(&prior); qerr == nil && prior != id {
			id = prior
			res, err = s.signUp(ctx, r, commandID, id, fp, hash, nil, nil)
		}
	}
	if err != nil {
		return "", false, err
	}
	return id, res.Repeated, nil
}

// signUp runs the registration command for the person id.
// hash nil registers a person without a password (they joined with a
// passkey: extra holds its passkey_added, after stores it).
func (s *Service) signUp(ctx context.Context, r Registration, commandID, id, fp string, hash []byte,
	extra []events.Pending, after func(context.Context, events.Querier) error) (events.Result, error) {
	return s.Writer.Do(ctx, events.Command{
		ID:    commandID,
		Actor: id,
		// Never the password nor an invitation's secret: the fingerprint
		// is kept beside the log.
		Fingerprint: fp,
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			var inv Invitation
			first := false
			var err error
			if r.Invitation != "" {
				if inv, err = findInvitation(ctx, tx.Q(), r.Invitation, tx.Now()); err != nil {
					return nil, err
				}
			} else if first, err = admitted(ctx, tx.Q(), s.Override); err != nil {
				return nil, err
			}
			if msg, err := usernameFree(ctx, tx.Q(), r.Username, ""); err != nil {
				return nil, err
			} else if msg != "" {
				return nil, errs.Field("username", "%s", msg)
			}
			user := []events.Pending{s.Types.Registered.New(Registered{Username: r.Username, DisplayName: r.DisplayName})}
			switch {
			case first:
				user = append(user, s.Types.RoleGranted.New(RoleGranted{Person: id, Role: RoleAdmin, By: System, Reason: "first_person"}))
			case inv.Role == RoleAdmin:
				var by string
				if err := tx.Q().QueryRowContext(ctx, `SELECT created_by FROM invitations WHERE id = ?`, inv.ID).Scan(&by); err != nil {
					return nil, fmt.Errorf("read invitation: %w", err)
				}
				user = append(user, s.Types.RoleGranted.New(RoleGranted{Person: id, Role: RoleAdmin, By: by, Reason: "invitation"}))
			}
			user = append(user, extra...)
			changes := []events.Change{{AggregateType: Aggregate, AggregateID: id, Expect: 0, Events: user}}
			if inv.ID != "" {
				iv, _, err := tx.Last(ctx, InvitationAggregate, inv.ID)
				if err != nil {
					return nil, err
				}
				changes = append(changes, events.Change{AggregateType: InvitationAggregate, AggregateID: inv.ID, Expect: iv,
					Events: []events.Pending{s.Types.InvitationUsed.New(InvitationUsed{Invitation: inv.ID, Person: id})}})
			}
			if inv.Project != "" {
				c, err := projectGrant(ctx, tx, s.Projects, inv, id)
				if err != nil {
					return nil, err
				}
				changes = append(changes, c)
			}
			return changes, nil
		},
		After: func(ctx context.Context, q events.Querier, _ []events.Event) error {
			if after != nil {
				if err := after(ctx, q); err != nil {
					return err
				}
			}
			if hash == nil {
				return nil
			}
			_, err := q.ExecContext(ctx, `INSERT INTO credentials (user_id, password_hash) VALUES (?, ?)`, id, hash)
			return err
		},
	})
}

// errBadLogin is the one answer for a wrong username or password, so the
// form does not tell which usernames exist.
var errBadLogin = &errs.Error{Code: errs.Invalid, Message: "Wrong username or password.",
	Fields: map[string]string{"password": "Wrong username or password."}}

// dummyHash keeps sign-in for unknown users as slow as for known ones: a
// real bcrypt hash at the default cost (of a random string nobody knows).
const dummyHash = "$2a$10$FfowPFohnuTbDVZdKWqt9OzNACpxsAYlElNCUZI1sSmfSV3hr.zHC"

// Authenticate checks a username and password and returns the person's
// id.
func (s *Service) Authenticate(ctx context.Context, username, password string) (string, error) {
	id, err := IDByUsername(ctx, s.DB.Read, username)
	if errs.Code(err) == errs.NotFound {
		bcrypt.CompareHashAndPassword([]byte(dummyHash), []byte(password))
		return "", errBadLogin
	}
	if err != nil {
		return "", err
	}
	return id, s.checkPassword(ctx, id, password)
}

// checkPassword checks the password of the person with this id.
func (s *Service) checkPassword(ctx context.Context, id, password string) error {
	var hash []byte
	err := s.DB.Read.QueryRowContext(ctx, `SELECT password_hash FROM credentials WHERE user_id = ?`, id).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		bcrypt.CompareHashAndPassword([]byte(dummyHash), []byte(password))
		return errBadLogin
	}
	if err != nil {
		return fmt.Errorf("look up credentials: %w", err)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return errBadLogin
	}
	return nil
}

// User is a registered person as the users projection has them.
type User struct {
	ID           string `json:"id"`
	Username     string `json:"username"`
	DisplayName  string `json:"display_name"`
	RegisteredAt string `json:"registered_at"`
}

// Lookup returns the person with this id.
func Lookup(ctx context.Context, q events.Querier, id string) (User, error) {
	u := User{ID: id}
	err := q.QueryRowContext(ctx, `SELECT username, display_name, registered_at FROM users WHERE id = ?`, id).Scan(&u.Username, &u.DisplayName, &u.RegisteredAt)
	if errors.Is(err, sql.ErrNoRows) {
		return u, errs.E(errs.NotFound, "there is no user called %s", id)
	}
	if err != nil {
		return u, fmt.Errorf("look up user %s: %w", id, err)
	}
	return u, nil
}

// All lists every user by username.
func All(ctx context.Context, q events.Querier) ([]User, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, username, display_name, registered_at FROM users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		if err := rows.Scan(&u.ID, &u.Username, &u.DisplayName, &u.RegisteredAt); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// keptAuth is what auth's projections read of an erased payload's
// remnant: the token or invitation it named.
func keptAuth(x events.ErasedPosition) (k struct {
	Token      string `json:"token"`
	Invitation string `json:"invitation"`
}) {
	x.KeptInto(&k)
	return k
}
