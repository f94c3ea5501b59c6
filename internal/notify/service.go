package notify

import (
	"context"
	"database/sql"
	"errors"
	"net/mail"
	"strconv"
	"strings"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
)

// Limits.
const (
	MaxEmail     = 254 // RFC 5321's longest path
	MaxPositions = 100 // notifications marked read by one command
)

// Service runs notify's commands through the writer. Each command appends
// to the actor's own inbox aggregate and to nobody else's.
type Service struct {
	Writer *events.Writer
	Types  Types
}

// do runs one command on actor's inbox; decide returns nothing to append
// when the command changes nothing (watching what one watches already).
func (s *Service) do(ctx context.Context, actor, cmdID, fp string, decide func(tx *events.Tx) ([]events.Pending, error)) error {
	_, err := s.Writer.Do(ctx, events.Command{ID: cmdID, Actor: actor, Fingerprint: fp, Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
		evs, err := decide(tx)
		if err != nil || len(evs) == 0 {
			return nil, err
		}
		return []events.Change{{AggregateType: Aggregate, AggregateID: actor, Expect: events.Any, Events: evs}}, nil
	}})
	return err
}

// watching says whether user watches ticket, as the projection has it.
func watching(ctx context.Context, q events.Querier, ticket int64, user string) (bool, error) {
	var w int
	err := q.QueryRowContext(ctx, `SELECT watching FROM watches WHERE ticket_id = ? AND user_id = ?`, ticket, user).Scan(&w)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return w == 1, err
}

// ticketExists reads the log, not the tickets' tables: a ticket is an
// aggregate "ticket" with at least one event.
func ticketExists(ctx context.Context, tx *events.Tx, ticket int64) error {
	v, _, err := tx.Last(ctx, "ticket", strconv.FormatInt(ticket, 10))
	if err != nil {
		return err
	}
	if v == 0 {
		return errs.E(errs.NotFound, "There is no ticket #%d.", ticket)
	}
	return nil
}

// Watch makes actor a watcher of ticket; watching it already appends nothing.
func (s *Service) Watch(ctx context.Context, actor string, ticket int64, cmdID string) error {
	return s.do(ctx, actor, cmdID, events.Fingerprint("watch", strconv.FormatInt(ticket, 10)), func(tx *events.Tx) ([]events.Pending, error) {
		if err := ticketExists(ctx, tx, ticket); err != nil {
			return nil, err
		}
		if err := access.CanTicket(ctx, tx.Q(), actor, access.Watch, ticket); err != nil {
			return nil, err
		}
		if w, err := watching(ctx, tx.Q(), ticket, actor); err != nil || w {
			return nil, err
		}
		return []events.Pending{s.Types.Watched.New(Watched{TicketID: ticket})}, nil
	})
}

// Unwatch stops actor watching ticket; not watching it appends nothing.
func (s *Service) Unwatch(ctx context.Context, actor string, ticket int64, cmdID string) error {
	return s.do(ctx, actor, cmdID, events.Fingerprint("unwatch", strconv.FormatInt(ticket, 10)), func(tx *events.Tx) ([]events.Pending, error) {
		if err := ticketExists(ctx, tx, ticket); err != nil {
			return nil, err
		}
		if err := access.CanTicket(ctx, tx.Q(), actor, access.Watch, ticket); err != nil {
			return nil, err
		}
		if w, err := watching(ctx, tx.Q(), ticket, actor); err != nil || !w {
			return nil, err
		}
		return []events.Pending{s.Types.Unwatched.New(Unwatched{TicketID: ticket})}, nil
	})
}

// MarkRead marks actor's notifications read: all up to log position upTo
// (0: none; "mark all read" sends the newest position the page showed, so
// what arrived after stays unread) and those at positions, each of which
// must be one of actor's. Nothing unread among them appends nothing.
func (s *Service) MarkRead(ctx context.Context, actor string, upTo int64, positions []int64, cmdID string) error {
	if upTo < 0 {
		return errs.Field("up_to", "up_to is a log position: a whole number from 1.")
	}
	if upTo == 0 && len(positions) == 0 {
		return errs.Field("position", "Say which notifications to mark read.")
	}
	if len(positions) > MaxPositions {
		return errs.Field("position", "At most %d notifications at once.", MaxPositions)
	}
	parts := []string{strconv.FormatInt(upTo, 10)}
	for _, p := range positions {
		parts = append(parts, strconv.FormatInt(p, 10))
	}
	return s.do(ctx, actor, cmdID, events.Fingerprint("read", parts...), func(tx *events.Tx) ([]events.Pending, error) {
		q := tx.Q()
		if upTo > s.Writer.Head().Position {
			return nil, errs.Field("up_to", "There is no position %d in the log yet.", upTo)
		}
		unread := 0
		var keep []int64
		for _, p := range positions {
			var read int
			err := q.QueryRowContext(ctx, `SELECT read FROM notifications WHERE user_id = ? AND position = ?`, actor, p).Scan(&read)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, errs.E(errs.NotFound, "You have no notification %d.", p)
			}
			if err != nil {
				return nil, err
			}
			if read == 0 && (upTo == 0 || p > upTo) {
				unread++
				keep = append(keep, p)
			}
		}
		if upTo > 0 {
			var n int
			if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM notifications WHERE user_id = ? AND read = 0 AND position <= ?`, actor, upTo).Scan(&n); err != nil {
				return nil, err
			}
			unread += n
			if n == 0 {
				upTo = 0 // nothing there to mark: keep the event to what it changes
			}
		}
		if unread == 0 {
			return nil, nil
		}
		return []events.Pending{s.Types.Read.New(Read{UpTo: upTo, Positions: keep})}, nil
	})
}

// CheckEmail validates a digest address: one line of text, at most 254
// characters, a bare address as net/mail parses it (no display name).
// Empty is allowed: it stops the digest.
func CheckEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if err := input.Line("email", "The email address", email, MaxEmail); err != nil {
		return "", err
	}
	if email == "" {
		return "", nil
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return "", errs.Field("email", "%q is not an email address such as ada@example.org.", email)
	}
	return email, nil
}

// SetEmail sets where actor's digest goes; empty stops it. The same
// address again appends nothing.
func (s *Service) SetEmail(ctx context.Context, actor, email, cmdID string) error {
	email, err := CheckEmail(email)
	if err != nil {
		return err
	}
	return s.do(ctx, actor, cmdID, events.Fingerprint("email", email), func(tx *events.Tx) ([]events.Pending, error) {
		cur, err := Email(ctx, tx.Q(), actor)
		if err != nil || cur == email {
			return nil, err
		}
		return []events.Pending{s.Types.EmailSet.New(EmailSet{Email: email})}, nil
	})
}
