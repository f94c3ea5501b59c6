package auth

import (
	"context"
	"errors"
	"fmt"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/events"
)

// UsernameChanged is the payload of username_changed, on the person's
// own aggregate (whose id never changes). Events already in the log keep
// naming the person by id, so they show the current name.
type UsernameChanged struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// applyUsernameChanged moves the person to the new username and keeps the
// old one reserved for them (former_usernames). A display name left as
// the username (the registration default) follows it, so the old name is
// not shown beside the new one.
func applyUsernameChanged(ctx context.Context, q events.Querier, e *events.Event, d UsernameChanged) error {
	if d.To == "" { // erased (internal/erase): the erasure set the username to the id
		return nil
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM former_usernames WHERE username = ?`, d.To); err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO former_usernames (username, user_id, changed_at) VALUES (?, ?, ?)
		ON CONFLICT (username) DO UPDATE SET user_id = excluded.user_id, changed_at = excluded.changed_at`,
		d.From, e.AggregateID, e.OccurredAt); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, `UPDATE users SET username = ?,
		display_name = CASE WHEN display_name = ? THEN ? ELSE display_name END WHERE id = ?`,
		d.To, d.From, d.To, e.AggregateID)
	return err
}

// errBadPassword answers a wrong current password on an account form.
var errBadPassword = &errs.Error{Code: errs.Invalid, Message: "The current password is wrong; nothing was changed.",
	Fields: map[string]string{"current_password": "This is not your current password."}}

// ChangeUsername renames the person with id person to username
// (username_changed), by actor: the person themselves (password must then
// be their current one, checked here) or system (an operator's `web admin
// rename`, password unused). The old username stays reserved for the
// person; they sign in with the new one from now on.
func (s *Service) ChangeUsername(ctx context.Context, actor, person, username, password, commandID string) error {
	username = normalUsername(username)
	if m := checkUsername(username); m != "" {
		return errs.Field("username", "%s", m)
	}
	if actor != System && actor != person {
		return errs.E(errs.Forbidden, "only the person themselves, a site admin or an operator may change a username")
	}
	if actor != System {
		if err := s.checkPassword(ctx, person, password); err != nil {
			if errs.Code(err) == errs.Invalid {
				return errBadPassword
			}
			return err
		}
	}
	return s.changeUsername(ctx, actor, person, username, commandID, nil)
}

// AdminRename renames the person with id person to username as a site
// admin (username_changed with the admin as actor; the role is checked
// again inside the command). No password: the admin answers for it, and
// the history shows who did it.
func (s *Service) AdminRename(ctx context.Context, actor, person, username, commandID string) error {
	username = normalUsername(username)
	if m := checkUsername(username); m != "" {
		return errs.Field("username", "%s", m)
	}
	return s.changeUsername(ctx, actor, person, username, commandID, func(ctx context.Context, tx *events.Tx) error {
		return access.Can(ctx, tx.Q(), actor, access.SiteAdmin, "")
	})
}

func (s *Service) changeUsername(ctx context.Context, actor, person, username, commandID string, check func(context.Context, *events.Tx) error) error {
	_, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: actor,
		Fingerprint: events.Fingerprint("change_username", person, username),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if check != nil {
				if err := check(ctx, tx); err != nil {
					return nil, err
				}
			}
			v, _, err := tx.Last(ctx, Aggregate, person)
			if err != nil {
				return nil, err
			}
			u, err := Lookup(ctx, tx.Q(), person)
			if v == 0 || errs.Code(err) == errs.NotFound {
				return nil, errs.E(errs.NotFound, "there is nobody with the id %s", person)
			}
			if err != nil {
				return nil, err
			}
			if u.Username == username {
				return nil, errs.Field("username", "That is already the username.")
			}
			if msg, err := usernameFree(ctx, tx.Q(), username, person); err != nil {
				return nil, err
			} else if msg != "" {
				return nil, errs.Field("username", "%s", msg)
			}
			return []events.Change{{AggregateType: Aggregate, AggregateID: person, Expect: v,
				Events: []events.Pending{s.Types.UsernameChanged.New(UsernameChanged{From: u.Username, To: username})}}}, nil
		},
	})
	return err
}

// RenameUser changes the username of whoever holds old to new, as an operator
// (`web admin rename`, actor system). It returns the person's id.
func (s *Service) RenameUser(ctx context.Context, old, username string) (string, error) {
	id, err := IDByUsername(ctx, s.DB.Read, old)
	if err != nil {
		return "", err
	}
	if err := s.ChangeUsername(ctx, System, id, username, "", ""); err != nil {
		var e *errs.Error
		if errors.As(err, &e) && len(e.Fields) > 0 {
			return "", errs.E(e.Code, "%s", e.Fields["username"])
		}
		return "", fmt.Errorf("rename %s: %w", old, err)
	}
	return id, nil
}
