package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"braid/internal/errs"
	"braid/internal/events"
)

// Person ids (docs/people.md). A person registered since migration 0012
// has an opaque, stable id: "p_" and 20 lowercase base32 characters
// (RFC 4648 alphabet a-z, 2-7) from 100 random bits of crypto/rand, e.g.
// p_7rc2kq4mzx3ovbn5ta6w. It is the actor and aggregate id of every
// event the person causes and never changes; the username is personal
// data and may (username_changed). People registered before keep their
// first username as their id, because the events already in the log name
// them so; the users projection maps both kinds to the current username.

// idPrefix starts every opaque person id.
const idPrefix = "p_"

var idRE = regexp.MustCompile(`^p_[a-z2-7]{20}$`)

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewPersonID returns a fresh opaque person id.
func NewPersonID() (string, error) {
	b := make([]byte, 13) // 104 bits, of which the 20 characters keep 100
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return idPrefix + strings.ToLower(idEncoding.EncodeToString(b))[:20], nil
}

// LooksLikeID reports whether s has the shape of an opaque person id.
// Such names are refused as usernames, so a username is never mistaken
// for someone's id in a log or a URL.
func LooksLikeID(s string) bool { return idRE.MatchString(s) }

// normalUsername is a username as people type it, in the form it is
// stored: usernames are lowercase (usernameRE), so lookups ignore case
// and the spaces around it.
func normalUsername(username string) string {
	return strings.ToLower(strings.TrimSpace(username))
}

// IDByUsername resolves a person's current username to their stable id:
// the one place where a username someone typed (sign-in, an assignee, a
// profile URL, an operator's command) becomes an id. Case and surrounding
// spaces do not matter. A username the person has since changed is not
// found (not_found), like one that never existed.
func IDByUsername(ctx context.Context, q events.Querier, username string) (string, error) {
	u := normalUsername(username)
	if u == "" || len(u) > 64 {
		return "", errs.E(errs.NotFound, "there is nobody called %q", username)
	}
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM users WHERE username = ? COLLATE NOCASE`, u).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errs.E(errs.NotFound, "there is nobody called %q", u)
	}
	if err != nil {
		return "", fmt.Errorf("look up username: %w", err)
	}
	return id, nil
}

// usernameFree says why username cannot be taken by person (an id, or ""
// for someone new), or "" when it can: nobody holds it now, and nobody
// else held it before (former usernames stay reserved for whoever had
// them).
func usernameFree(ctx context.Context, q events.Querier, username, person string) (string, error) {
	var holder string
	err := q.QueryRowContext(ctx, `SELECT id FROM users WHERE username = ? COLLATE NOCASE
		UNION ALL SELECT user_id FROM former_usernames WHERE username = ? COLLATE NOCASE
		UNION ALL SELECT id FROM users WHERE id = ? LIMIT 1`, username, username, username).Scan(&holder)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("check username: %w", err)
	}
	if holder == person && person != "" {
		return "", nil
	}
	return fmt.Sprintf("The username %s is taken; choose another.", username), nil
}

// usernameOf names the person with this id in a message: their current
// username, or the id when it cannot be read.
func usernameOf(ctx context.Context, q events.Querier, id string) string {
	var u string
	if err := q.QueryRowContext(ctx, `SELECT username FROM users WHERE id = ?`, id).Scan(&u); err != nil {
		return id
	}
	return u
}
