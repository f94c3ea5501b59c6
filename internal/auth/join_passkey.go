package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/labstack/echo/v4"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
)

// Joining with a passkey instead of a password: the invitation page asks
// for a username and a display name, the browser creates a passkey, and
// one command registers the person with no password (user_registered,
// passkey_added, invitation_used and the invitation's grant). A person
// without a password signs in only with their passkeys, until they set a
// password on their profile.

const joinCeremonyKey = "passkey_join"

// joinPasskeyName names the passkey a person joins with; they may add
// others, named as they like, on their profile.
const joinPasskeyName = "joined with"

// checkNames checks a joining person's username and display name.
func checkNames(username, display string) error {
	fields := map[string]string{}
	if m := checkUsername(username); m != "" {
		fields["username"] = m
	}
	if err := input.Line("display_name", "The display name", display, 64); err != nil {
		fields["display_name"] = errs.Fields(err)["display_name"]
	}
	if len(fields) > 0 {
		return &errs.Error{Code: errs.Invalid, Message: "Please fix the fields marked below.", Fields: fields}
	}
	return nil
}

// BeginJoin starts a passkey for a person joining through the invitation
// whose secret is token: the options for navigator.credentials.create.
// Nothing is written but the ceremony the caller keeps in the session.
func (p *Passkeys) BeginJoin(ctx context.Context, s *Service, token, username, display string) (*protocol.CredentialCreation, Ceremony, error) {
	if err := p.on(); err != nil {
		return nil, Ceremony{}, err
	}
	username, display = normalUsername(username), strings.TrimSpace(display)
	if err := checkNames(username, display); err != nil {
		return nil, Ceremony{}, err
	}
	if display == "" {
		display = username
	}
	if _, err := s.CheckInvitation(ctx, token); err != nil {
		return nil, Ceremony{}, err
	}
	if msg, err := usernameFree(ctx, p.DB.Read, username, ""); err != nil {
		return nil, Ceremony{}, err
	} else if msg != "" {
		return nil, Ceremony{}, errs.Field("username", "%s", msg)
	}
	u := &passkeyUser{username: username, display: display, handle: make([]byte, 32)}
	rand.Read(u.handle)
	opts, sd, err := p.RP.BeginRegistration(u,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: protocol.VerificationPreferred}),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))
	if err != nil {
		return nil, Ceremony{}, fmt.Errorf("begin passkey registration: %w", err)
	}
	return opts, Ceremony{Session: *sd, Name: joinPasskeyName, Invite: base64.RawURLEncoding.EncodeToString(tokenHash(token)),
		Username: username, DisplayName: display}, nil
}

// FinishJoin checks the authenticator's answer and registers the person
// with that passkey and no password, through the invitation, in one
// command. It returns their id.
func (p *Passkeys) FinishJoin(ctx context.Context, s *Service, token string, cer Ceremony, r *http.Request, commandID string) (string, error) {
	if err := p.on(); err != nil {
		return "", err
	}
	invite := base64.RawURLEncoding.EncodeToString(tokenHash(token))
	if cer.Invite != invite || len(cer.Session.UserID) == 0 || cer.Username == "" {
		return "", errs.E(errs.Invalid, "No passkey is being made for this invitation in this session (or it took longer than %s): start again.", ceremonyTTL)
	}
	u := &passkeyUser{username: cer.Username, display: cer.DisplayName, handle: cer.Session.UserID}
	cred, err := p.RP.FinishRegistration(u, cer.Session, r)
	if err != nil || !bytes.Equal(u.handle, cer.Session.UserID) {
		return "", errBadPasskey
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return "", fmt.Errorf("encode passkey: %w", err)
	}
	id, err := NewPersonID()
	if err != nil {
		return "", err
	}
	pk := Passkey{IDHash: IDHash(cred.ID), Name: cer.Name, Created: p.now().UTC().Format(time.RFC3339Nano)}
	reg := Registration{Username: cer.Username, DisplayName: cer.DisplayName, Invitation: token}
	fp := events.Fingerprint("register_passkey", reg.Username, reg.DisplayName, invite, pk.IDHash)
	extra := []events.Pending{p.Types.PasskeyAdded.New(PasskeyAdded{Name: pk.Name, CredentialIDHash: pk.IDHash})}
	res, err := s.signUp(ctx, reg, commandID, id, fp, nil, extra, func(ctx context.Context, q events.Querier) error {
		var taken int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM passkeys WHERE credential_id = ?`, cred.ID).Scan(&taken); err != nil {
			return fmt.Errorf("look up passkey: %w", err)
		}
		if taken > 0 {
			return errs.E(errs.Conflict, "This passkey is already registered.")
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO passkey_handles (user_id, handle) VALUES (?, ?)`, id, u.handle); err != nil {
			return fmt.Errorf("store passkey handle: %w", err)
		}
		_, err := q.ExecContext(ctx, `INSERT INTO passkeys (id_hash, credential_id, user_id, name, credential, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			pk.IDHash, cred.ID, id, pk.Name, raw, pk.Created)
		return err
	})
	if err != nil {
		return "", err
	}
	if res.Repeated {
		return "", errs.E(errs.Conflict, "You have joined already: sign in with your passkey.")
	}
	return id, nil
}

// JoinPasskeyOptions starts joining with a passkey (POST
// /join/{token}/passkey/options, fields username, display_name).
func (h *Handlers) JoinPasskeyOptions(c echo.Context) error {
	ctx := c.Request().Context()
	if _, wait, ok := h.Limiter.Reserve(registerLimits(c.RealIP())...); !ok {
		retryAfter(c, wait)
		return errs.E(errs.TooMany, "Too many registrations from your address. Try again in %s.", wait.Round(time.Second))
	}
	opts, cer, err := h.Passkeys.BeginJoin(ctx, h.Service, c.Param("token"), c.FormValue("username"), c.FormValue("display_name"))
	if err != nil {
		return err
	}
	return h.visitorCeremony(c, joinCeremonyKey, cer, opts.Response)
}

// JoinPasskey finishes joining with a passkey (POST /join/{token}/passkey,
// the authenticator's answer as JSON, the command id in the query) and
// signs the new person in.
func (h *Handlers) JoinPasskey(c echo.Context) error {
	if err := passkeyBody(c); err != nil {
		return err
	}
	ctx := c.Request().Context()
	cer := h.takeCeremony(ctx, joinCeremonyKey)
	id, err := h.Passkeys.FinishJoin(ctx, h.Service, c.Param("token"), cer, c.Request(), c.QueryParam("command_id"))
	if err != nil {
		return err
	}
	if err := h.signIn(c, id); err != nil {
		return err
	}
	h.Env.Flash(c, fmt.Sprintf("Welcome, %s. You joined with a passkey and have no password: sign in with this passkey, or set a password on your profile.", cer.Username))
	return c.JSON(http.StatusOK, map[string]any{"user": id, "username": cer.Username, "redirect": "/tickets"})
}
