package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
	"braid/templates"
)

// DisplayNameChanged is the payload of display_name_changed.
type DisplayNameChanged struct {
	DisplayName string `json:"display_name"`
}

// PasswordChanged is the payload of password_changed: only that it
// happened, and that the person's other sessions were signed out. The
// password and its hash never enter the log.
type PasswordChanged struct {
	OtherSessionsEnded bool `json:"other_sessions_ended"`
}

// PasswordReset is the payload of password_reset (actor system): a
// password was set through a one-time link an operator made. The link's
// secret never enters the log.
type PasswordReset struct {
	LinkCreatedAt string `json:"link_created_at"`
	SessionsEnded bool   `json:"sessions_ended"`
}

// Aggregate is the aggregate type of people's events.
const Aggregate = "user"

func (s *Service) hash(password string) ([]byte, error) {
	cost := s.Cost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// Rename changes a person's display name (display_name_changed); person
// is their id. An empty name means the username, as at registration.
func (s *Service) Rename(ctx context.Context, person, name, commandID string) error {
	name = strings.TrimSpace(name)
	if err := input.Line("display_name", "The display name", name, 64); err != nil {
		return err
	}
	if name == "" {
		u, err := Lookup(ctx, s.DB.Read, person)
		if err != nil {
			return err
		}
		name = u.Username
	}
	_, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: person,
		Fingerprint: events.Fingerprint("rename", person, name),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			v, _, err := tx.Last(ctx, Aggregate, person)
			if err != nil {
				return nil, err
			}
			if v == 0 {
				return nil, errs.E(errs.NotFound, "there is no user called %s", person)
			}
			var cur string
			if err := tx.Q().QueryRowContext(ctx, `SELECT display_name FROM users WHERE id = ?`, person).Scan(&cur); err != nil {
				return nil, fmt.Errorf("read display name: %w", err)
			}
			if cur == name {
				return nil, errs.Field("display_name", "That is already your display name.")
			}
			return []events.Change{{AggregateType: Aggregate, AggregateID: person, Expect: v,
				Events: []events.Pending{s.Types.DisplayNameChanged.New(DisplayNameChanged{DisplayName: name})}}}, nil
		},
	})
	return err
}

// checkNewPassword applies the registration rules to a new password.
func checkNewPassword(password, confirmation string) map[string]string {
	fields := map[string]string{}
	r := Registration{Username: "placeholder", Password: password, Confirmation: confirmation}
	if err := r.Validate(); err != nil {
		for _, k := range []string{"password", "password_confirmation"} {
			if m := errs.Fields(err)[k]; m != "" {
				fields["new_"+k] = m
			}
		}
	}
	return fields
}

// ChangePassword sets a new password for person after checking the
// current one (the caller counts the attempt with the sign-in limiter). In
// one transaction: password_changed in the log, the new hash in
// credentials, the person's session epoch raised, which signs out every
// other session. It returns the new epoch, for the caller's own session.
func (s *Service) ChangePassword(ctx context.Context, person, current, password, confirmation, commandID string) (int64, error) {
	fields := checkNewPassword(password, confirmation)
	if len(fields) > 0 {
		return 0, &errs.Error{Code: errs.Invalid, Message: "Please fix the fields marked below.", Fields: fields}
	}
	// Someone who joined with a passkey has no password: they set one
	// without a current one (checked again inside the command).
	has, err := HasPassword(ctx, s.DB.Read, person)
	if err != nil {
		return 0, err
	}
	if has {
		if err := s.checkPassword(ctx, person, current); err != nil {
			if errs.Code(err) == errs.Invalid {
				return 0, errBadPassword
			}
			return 0, err
		}
	}
	hash, err := s.hash(password)
	if err != nil {
		return 0, err
	}
	var epoch int64
	res, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: person,
		Fingerprint: events.Fingerprint("change_password", person),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if now, err := HasPassword(ctx, tx.Q(), person); err != nil {
				return nil, err
			} else if now != has {
				return nil, errs.E(errs.Conflict, "Your password was set or changed a moment ago; nothing was changed. Reload and try again.")
			}
			v, _, err := tx.Last(ctx, Aggregate, person)
			if err != nil {
				return nil, err
			}
			return []events.Change{{AggregateType: Aggregate, AggregateID: person, Expect: v,
				Events: []events.Pending{s.Types.PasswordChanged.New(PasswordChanged{OtherSessionsEnded: true})}}}, nil
		},
		After: func(ctx context.Context, q events.Querier, _ []events.Event) error {
			if _, err := q.ExecContext(ctx, `INSERT INTO credentials (user_id, password_hash) VALUES (?, ?)
				ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash`, person, hash); err != nil {
				return fmt.Errorf("store password: %w", err)
			}
			epoch, err = bumpEpoch(ctx, q, person)
			return err
		},
	})
	if err != nil {
		return 0, err
	}
	if res.Repeated {
		return Epoch(ctx, s.DB.Read, person)
	}
	return epoch, nil
}

// bumpEpoch raises person's session epoch and returns the new one.
func bumpEpoch(ctx context.Context, q events.Querier, person string) (int64, error) {
	var epoch int64
	err := q.QueryRowContext(ctx, `INSERT INTO session_epochs (user_id, epoch) VALUES (?, 1)
		ON CONFLICT (user_id) DO UPDATE SET epoch = epoch + 1 RETURNING epoch`, person).Scan(&epoch)
	if err != nil {
		return 0, fmt.Errorf("raise session epoch: %w", err)
	}
	return epoch, nil
}

// SignOutOthers raises person's session epoch, so every session signed
// in under an older one is signed out at its next request; it returns the
// new epoch for the caller's own session. Nothing is appended to the log:
// sessions are not history.
func (s *Service) SignOutOthers(ctx context.Context, person string) (int64, error) {
	return bumpEpoch(ctx, s.DB.Aux, person)
}

// Epoch returns person's session epoch (0 until first raised).
func Epoch(ctx context.Context, q events.Querier, person string) (int64, error) {
	var epoch int64
	err := q.QueryRowContext(ctx, `SELECT epoch FROM session_epochs WHERE user_id = ?`, person).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read session epoch: %w", err)
	}
	return epoch, nil
}

// ResetTokenBytes is the size of a reset link's secret: 256 bits.
const ResetTokenBytes = 32

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// IssueReset makes a one-time password reset link for person, valid
// for ttl from now. Only the token's SHA-256 is stored (outside the log);
// the token itself is returned once, for the operator to pass on.
func IssueReset(ctx context.Context, q events.Querier, person string, now time.Time, ttl time.Duration) (string, error) {
	if _, err := Lookup(ctx, q, person); err != nil {
		return "", err
	}
	var from string
	if err := q.QueryRowContext(ctx, `SELECT imported_from FROM users WHERE id = ?`, person).Scan(&from); err != nil {
		return "", fmt.Errorf("look up person: %w", err)
	}
	if from != "" { // imported from another tracker: never signs in (docs/import.md)
		return "", errs.E(errs.Invalid, "this person was imported from another tracker and cannot sign in; claim them for a real account instead (web admin claim)")
	}
	b := make([]byte, ResetTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	_, err := q.ExecContext(ctx, `INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		tokenHash(token), person, now.UTC().Format(time.RFC3339Nano), now.Add(ttl).UTC().Format(time.RFC3339Nano))
	if err != nil {
		return "", fmt.Errorf("store reset link: %w", err)
	}
	return token, nil
}

var errBadReset = errs.E(errs.NotFound, "This reset link is not valid: it was used already, it has expired, or it was never made. Ask the operator for a new one.")

type reset struct {
	user, created, expires string
}

func findReset(ctx context.Context, q events.Querier, token string, now time.Time) (reset, error) {
	var r reset
	if len(token) > 100 {
		return r, errBadReset
	}
	var used sql.NullString
	err := q.QueryRowContext(ctx, `SELECT user_id, created_at, expires_at, used_at FROM password_resets WHERE token_hash = ?`,
		tokenHash(token)).Scan(&r.user, &r.created, &r.expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return r, errBadReset
	}
	if err != nil {
		return r, fmt.Errorf("look up reset link: %w", err)
	}
	exp, err := time.Parse(time.RFC3339Nano, r.expires)
	if err != nil || used.Valid || !now.Before(exp) {
		return r, errBadReset
	}
	return r, nil
}

// CheckReset returns the id of the person a reset token is for, or not_found when
// the link was used, has expired or never existed.
func (s *Service) CheckReset(ctx context.Context, token string) (string, error) {
	r, err := findReset(ctx, s.DB.Read, token, s.now())
	return r.user, err
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Reset sets a new password through a one-time link. In one transaction:
// the link is checked and spent, password_reset (actor system, no secret)
// is appended, the hash is stored and every session of the person is
// signed out.
func (s *Service) Reset(ctx context.Context, token, password, confirmation, commandID string) (string, error) {
	if _, err := s.CheckReset(ctx, token); err != nil {
		return "", err
	}
	if fields := checkNewPassword(password, confirmation); len(fields) > 0 {
		return "", &errs.Error{Code: errs.Invalid, Message: "Please fix the fields marked below.", Fields: fields}
	}
	hash, err := s.hash(password)
	if err != nil {
		return "", err
	}
	var r reset
	_, err = s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: "system",
		Fingerprint: events.Fingerprint("reset_password", base64.RawURLEncoding.EncodeToString(tokenHash(token))),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			var err error
			if r, err = findReset(ctx, tx.Q(), token, tx.Now()); err != nil {
				return nil, err
			}
			v, _, err := tx.Last(ctx, Aggregate, r.user)
			if err != nil {
				return nil, err
			}
			return []events.Change{{AggregateType: Aggregate, AggregateID: r.user, Expect: v,
				Events: []events.Pending{s.Types.PasswordReset.New(PasswordReset{LinkCreatedAt: r.created, SessionsEnded: true})}}}, nil
		},
		After: func(ctx context.Context, q events.Querier, appended []events.Event) error {
			res, err := q.ExecContext(ctx, `UPDATE password_resets SET used_at = ? WHERE token_hash = ? AND used_at IS NULL`,
				appended[0].OccurredAt, tokenHash(token))
			if err != nil {
				return fmt.Errorf("spend reset link: %w", err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return errBadReset
			}
			if _, err := q.ExecContext(ctx, `INSERT INTO credentials (user_id, password_hash) VALUES (?, ?)
				ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash`, r.user, hash); err != nil {
				return fmt.Errorf("store password: %w", err)
			}
			_, err = bumpEpoch(ctx, q, r.user)
			return err
		},
	})
	if err != nil {
		return "", err
	}
	return r.user, nil
}

// Names returns how to name each person in ids that is known (their
// display name and current username), in one query.
func Names(ctx context.Context, q events.Querier, ids []string) (map[string]templates.Person, error) {
	out := make(map[string]templates.Person, len(ids))
	uniq := make([]any, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	if len(uniq) == 0 {
		return out, nil
	}
	// SQLite allows 32,766 parameters; a page names a few dozen people.
	// An erased person (internal/erase) is shown as such, under their id.
	// A person imported from another tracker whom a real person claimed
	// (internal/importer) is named as the claimant.
	rows, err := q.QueryContext(ctx, `SELECT u.id, COALESCE(c.username, u.username),
		CASE WHEN COALESCE(c.erased_at, u.erased_at) != '' THEN 'Erased person' ELSE COALESCE(c.display_name, u.display_name) END
		FROM users u LEFT JOIN users c ON c.id = u.claimed_by AND u.claimed_by != ''
		WHERE u.id IN (?`+strings.Repeat(",?", len(uniq)-1)+`)`, uniq...)
	if err != nil {
		return nil, fmt.Errorf("look up names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p templates.Person
		if err := rows.Scan(&p.ID, &p.Username, &p.Name); err != nil {
			return nil, err
		}
		out[p.ID] = p
	}
	return out, rows.Err()
}

// HasPassword says whether person has a password (someone who joined with
// a passkey has none until they set one).
func HasPassword(ctx context.Context, q events.Querier, person string) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM credentials WHERE user_id = ?`, person).Scan(&n); err != nil {
		return false, fmt.Errorf("look up credentials: %w", err)
	}
	return n > 0, nil
}
