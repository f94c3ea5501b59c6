package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
	"braid/internal/web"
)

// Personal access tokens: a person makes one on their profile page for a
// script, with a name, scopes and an expiry; it is shown once. The log
// holds token_created and token_revoked (never the secret); the secret's
// SHA-256 lives outside the log, in token_secrets.

// Scopes a token may carry: read answers GETs, write runs commands on
// tickets, comments, watches and the inbox, admin runs site and project
// administration. A token never exceeds its person's roles: every command
// checks the person as it would for a browser.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
	ScopeAdmin = "admin"
)

var allScopes = []string{ScopeRead, ScopeWrite, ScopeAdmin}

// TokenPrefix starts every token: "brd_" and 43 base64url characters
// (256 random bits), so a leaked one is easy to recognise and scan for.
const TokenPrefix = "brd_"

// Limits of tokens.
const (
	MaxTokenName   = 100
	MaxTokenLife   = 366 * 24 * time.Hour // a year (and a leap day)
	MaxTokens      = 50                   // live tokens per person
	TokenAggregate = "token"
)

// TokenRule limits each token's requests (429 with Retry-After beyond).
var TokenRule = Rule{Max: 600, Window: 10 * time.Minute}

// TokenCreated is the payload of token_created: never the secret.
type TokenCreated struct {
	Token     string   `json:"token"` // the token's id
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	ExpiresAt string   `json:"expires_at"`
	// Project binds a bot token to one project (made on its people page):
	// it acts as its maker there and nowhere else. Absent for a personal token.
	Project string `json:"project,omitempty"`
}

// TokenRevoked is the payload of token_revoked.
type TokenRevoked struct {
	Token string `json:"token"`
}

func registerTokens(reg *events.Registry, t *Types) {
	t.TokenCreated = events.Define[TokenCreated](reg, "token_created", 1)
	t.TokenRevoked = events.Define[TokenRevoked](reg, "token_revoked", 1)
	p := reg.NewProjection("tokens", "tokens")
	events.On(reg, p, t.TokenCreated, func(ctx context.Context, q events.Querier, e *events.Event, d TokenCreated) error {
		_, err := q.ExecContext(ctx, `INSERT INTO tokens (id, user_id, name, scopes, created_at, expires_at, project) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			d.Token, e.Actor, d.Name, strings.Join(d.Scopes, " "), e.OccurredAt, d.ExpiresAt, d.Project)
		return err
	})
	events.On(reg, p, t.TokenRevoked, func(ctx context.Context, q events.Querier, e *events.Event, d TokenRevoked) error {
		_, err := q.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ?`, e.OccurredAt, d.Token)
		return err
	})
	events.On(reg, p, events.ErasedEvent, func(ctx context.Context, q events.Querier, e *events.Event, d events.Erasure) error {
		for _, x := range d.Positions {
			if x.Type == "token_created" {
				if _, err := q.ExecContext(ctx, `UPDATE tokens SET name = '' WHERE id = ?`, keptAuth(x).Token); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// NewToken is what CreateToken asks for. Expires is the last moment the
// token works (at most a year away).
type NewToken struct {
	Name    string
	Scopes  []string
	Expires time.Time
	Project string // a bot token's project (its maker must be an owner there); "" for a personal token
}

// CreatedToken is a token just made: Secret is shown once and never again
// (empty when the same command was sent twice).
type CreatedToken struct {
	ID, Secret string
	Repeated   bool
}

// ParseScopes reads scopes from form values, refusing unknown ones.
func ParseScopes(vals []string) ([]string, error) {
	var out []string
	for _, v := range vals {
		for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			if !slices.Contains(allScopes, s) {
				return nil, errs.Field("scopes", "Scopes are read, write and admin; got %q.", s)
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		return nil, errs.Field("scopes", "Choose at least one scope: read, write or admin.")
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(allScopes, a) - slices.Index(allScopes, b) })
	return out, nil
}

// ParseExpiry reads the expiry field: 7, 30 or 90 (days), or a date
// (YYYY-MM-DD, the token works to the end of that day, UTC), at most a year
// from now.
func ParseExpiry(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	var exp time.Time
	switch s {
	case "7", "30", "90":
		n, _ := strconv.Atoi(s)
		exp = now.Add(time.Duration(n) * 24 * time.Hour)
	default:
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return exp, errs.Field("expires", "Choose 7, 30 or 90 days, or a date such as 2027-01-31.")
		}
		exp = d.Add(24*time.Hour - time.Nanosecond)
	}
	if !exp.After(now) {
		return exp, errs.Field("expires", "That date has passed: choose a later one.")
	}
	if exp.Sub(now) > MaxTokenLife {
		return exp, errs.Field("expires", "A token may live a year at most.")
	}
	return exp.UTC(), nil
}

// CreateToken makes a token for actor (token_created, without the secret).
// The secret's SHA-256 goes to token_secrets in the same transaction; the
// secret itself only to the caller.
func (s *Service) CreateToken(ctx context.Context, actor string, in NewToken, commandID string) (CreatedToken, error) {
	if err := input.Line("name", "The name", in.Name, MaxTokenName); err != nil {
		return CreatedToken{}, err
	}
	if strings.TrimSpace(in.Name) == "" {
		return CreatedToken{}, errs.Field("name", "Name the token after what will use it, e.g. ci-bot.")
	}
	scopes, err := ParseScopes(in.Scopes)
	if err != nil {
		return CreatedToken{}, err
	}
	var raw [32]byte
	rand.Read(raw[:])
	tok := CreatedToken{ID: "tok_" + events.NewID()[:16], Secret: TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])}
	exp := in.Expires.UTC().Format(time.RFC3339Nano)
	fp := events.Fingerprint("create_token", in.Name, strings.Join(scopes, " "), exp)
	if in.Project != "" {
		fp = events.Fingerprint("create_token", in.Name, strings.Join(scopes, " "), exp, in.Project)
	}
	res, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: actor,
		Fingerprint: fp,
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if in.Project != "" {
				// A bot token: only who may manage the project's roles
				// (its owners, site admins) may make one.
				if err := access.Can(ctx, tx.Q(), actor, access.Read, in.Project); err != nil {
					return nil, err
				}
				if err := access.Can(ctx, tx.Q(), actor, access.ManageRoles, in.Project); err != nil {
					return nil, err
				}
			}
			var n int
			if err := tx.Q().QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE user_id = ? AND revoked_at = '' AND expires_at > ?`,
				actor, tx.Now().UTC().Format(time.RFC3339Nano)).Scan(&n); err != nil {
				return nil, fmt.Errorf("count tokens: %w", err)
			}
			if n >= MaxTokens {
				return nil, errs.Field("name", "You have %d live tokens, the most allowed: revoke one first.", n)
			}
			return []events.Change{{AggregateType: TokenAggregate, AggregateID: tok.ID, Expect: 0,
				Events: []events.Pending{s.Types.TokenCreated.New(TokenCreated{Token: tok.ID, Name: in.Name, Scopes: scopes, ExpiresAt: exp, Project: in.Project})}}}, nil
		},
		After: func(ctx context.Context, q events.Querier, _ []events.Event) error {
			_, err := q.ExecContext(ctx, `INSERT INTO token_secrets (token_hash, token_id) VALUES (?, ?)`, tokenHash(tok.Secret), tok.ID)
			return err
		},
	})
	if err != nil {
		return CreatedToken{}, err
	}
	if res.Repeated {
		return CreatedToken{ID: res.Events[0].AggregateID, Repeated: true}, nil
	}
	return tok, nil
}

// RevokeToken revokes one of actor's own tokens (token_revoked): the next
// request with it is refused.
func (s *Service) RevokeToken(ctx context.Context, actor, id, commandID string) error {
	_, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: actor,
		Fingerprint: events.Fingerprint("revoke_token", id),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			var owner, revoked string
			err := tx.Q().QueryRowContext(ctx, `SELECT user_id, revoked_at FROM tokens WHERE id = ?`, id).Scan(&owner, &revoked)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && owner != actor) {
				return nil, errs.E(errs.NotFound, "You have no token %q.", id)
			}
			if err != nil {
				return nil, fmt.Errorf("read token: %w", err)
			}
			if revoked != "" {
				return nil, errs.E(errs.Conflict, "Token %s is revoked already.", id)
			}
			v, _, err := tx.Last(ctx, TokenAggregate, id)
			if err != nil {
				return nil, err
			}
			return []events.Change{{AggregateType: TokenAggregate, AggregateID: id, Expect: v,
				Events: []events.Pending{s.Types.TokenRevoked.New(TokenRevoked{Token: id})}}}, nil
		},
	})
	return err
}

// TokenInfo is a token as its owner's profile lists it.
type TokenInfo struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	CreatedAt string   `json:"created_at"`
	ExpiresAt string   `json:"expires_at"`
	RevokedAt string   `json:"revoked_at,omitempty"`
	Project   string   `json:"project,omitempty"` // a bot token's one project
}

// Tokens lists a person's tokens, newest first.
func Tokens(ctx context.Context, q events.Querier, person string) ([]TokenInfo, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, name, scopes, created_at, expires_at, revoked_at, project FROM tokens WHERE user_id = ? ORDER BY created_at DESC`, person)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []TokenInfo
	for rows.Next() {
		var t TokenInfo
		var scopes string
		if err := rows.Scan(&t.ID, &t.Name, &scopes, &t.CreatedAt, &t.ExpiresAt, &t.RevokedAt, &t.Project); err != nil {
			return nil, err
		}
		t.Scopes = strings.Fields(scopes)
		out = append(out, t)
	}
	return out, rows.Err()
}

type liveToken struct {
	id, user, project string
	scopes            []string
}

var errBadToken = errs.E(errs.Unauthorized, "The token is not valid: it is wrong, expired or revoked.")

// findToken returns the live token whose secret this is.
func findToken(ctx context.Context, q events.Querier, secret string, now time.Time) (liveToken, error) {
	var t liveToken
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) != len(TokenPrefix)+43 {
		return t, errBadToken
	}
	var scopes, exp, revoked string
	err := q.QueryRowContext(ctx, `SELECT t.id, t.user_id, t.scopes, t.expires_at, t.revoked_at, t.project FROM token_secrets s
		JOIN tokens t ON t.id = s.token_id WHERE s.token_hash = ?`, tokenHash(secret)).Scan(&t.id, &t.user, &scopes, &exp, &revoked, &t.project)
	if errors.Is(err, sql.ErrNoRows) {
		return t, errBadToken
	}
	if err != nil {
		return t, fmt.Errorf("look up token: %w", err)
	}
	if revoked != "" || exp <= now.UTC().Format(time.RFC3339Nano) {
		return t, errBadToken
	}
	t.scopes = strings.Fields(scopes)
	return t, nil
}

// scopeFor says which scope a route needs from a token, or "" when no
// token may use it: signing in and out, one's account and its tokens need
// a browser session (a token must not mint tokens or change a password).
func scopeFor(method, path string) string {
	switch {
	case strings.HasPrefix(path, "/account/"), path == "/p/:slug/tokens", path == "/login", strings.HasPrefix(path, "/login/"), path == "/logout",
		path == "/register", strings.HasPrefix(path, "/reset/"), strings.HasPrefix(path, "/join/"):
		return ""
	case method == http.MethodGet || method == http.MethodHead:
		return ScopeRead
	case strings.HasPrefix(path, "/admin"), path == "/projects", strings.HasPrefix(path, "/p/"):
		return ScopeAdmin
	}
	return ScopeWrite
}

// Bearer authenticates a request that carries Authorization: Bearer: it
// runs after the session is loaded and replaces whoever the cookie named.
// A wrong, expired or revoked token is 401 (never the cookie instead); a
// route beyond the token's scopes 403; over the token's rate 429. The
// request is marked as token-authenticated, so the CSRF check skips it.
func (h *Handlers) Bearer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !web.BearerHeader(c) {
			return next(c)
		}
		req := c.Request()
		ctx := req.Context()
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="braid"`)
		_, secret, _ := strings.Cut(req.Header.Get(echo.HeaderAuthorization), " ")
		t, err := findToken(ctx, h.Env.DB.Read, strings.TrimSpace(secret), time.Now())
		if err != nil {
			return err
		}
		need := scopeFor(req.Method, c.Path())
		if need == "" {
			return errs.E(errs.Forbidden, "This needs a signed-in browser, not a token.")
		}
		if !slices.Contains(t.scopes, need) {
			return errs.E(errs.Forbidden, "This token lacks the %s scope: it has %s.", need, strings.Join(t.scopes, ", "))
		}
		if h.Limiter != nil {
			if _, wait, ok := h.Limiter.Reserve(Limit{Key: KeyOf("token", t.id), Rule: TokenRule}); !ok {
				c.Response().Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
				return errs.E(errs.TooMany, "This token made too many requests: try again in %d seconds.", int(wait/time.Second)+1)
			}
		}
		u, err := Lookup(ctx, h.Env.DB.Read, t.user)
		if errs.Code(err) == errs.NotFound {
			return errBadToken
		} else if err != nil {
			return err
		}
		ctx = web.WithUser(ctx, web.User{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName})
		c.SetRequest(req.WithContext(web.WithToken(ctx, web.Token{ID: t.id, Scopes: t.scopes, Project: t.project})))
		return next(c)
	}
}
