package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
)

// PasskeyAdded is the payload of passkey_added: the name the person gave
// it and the SHA-256 of the credential id. The public key and the sign
// count never enter the log (they are in the passkeys table, like
// password hashes in credentials).
type PasskeyAdded struct {
	Name             string `json:"name"`
	CredentialIDHash string `json:"credential_id_hash"`
}

// PasskeyRemoved is the payload of passkey_removed.
type PasskeyRemoved struct {
	Name             string `json:"name"`
	CredentialIDHash string `json:"credential_id_hash"`
}

func registerPasskeys(reg *events.Registry, t *Types) {
	t.PasskeyAdded = events.Define[PasskeyAdded](reg, "passkey_added", 1)
	t.PasskeyRemoved = events.Define[PasskeyRemoved](reg, "passkey_removed", 1)
}

// MaxPasskeys is how many passkeys one person may hold.
const MaxPasskeys = 10

// ceremonyTTL is how long a passkey ceremony (add or sign in) may take
// between its challenge and its answer.
const ceremonyTTL = 2 * time.Minute

// NewRelyingParty configures WebAuthn for the site at base (its address
// as people reach it: scheme, host, port). The relying party id is the
// host without the port, so an IP address cannot serve: browsers refuse
// passkeys for one (use localhost, or a name).
func NewRelyingParty(base string) (*webauthn.WebAuthn, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("base url %q: want http(s)://host[:port]", base)
	}
	host := u.Hostname()
	if strings.Trim(host, "0123456789.") == "" || strings.Contains(host, ":") {
		return nil, fmt.Errorf("base url %q: passkeys need a host name, not an IP address (use localhost or the site's name)", base)
	}
	t := webauthn.TimeoutConfig{Enforce: true, Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL}
	return webauthn.New(&webauthn.Config{
		RPID:          host,
		RPDisplayName: "Braid",
		RPOrigins:     []string{u.Scheme + "://" + u.Host},
		Timeouts:      webauthn.TimeoutsConfig{Login: t, Registration: t},
	})
}

// Passkeys runs the passkey commands and ceremonies. RP nil means
// passkeys are off (no base URL with a host name).
type Passkeys struct {
	RP     *webauthn.WebAuthn
	DB     *events.DB
	Writer *events.Writer
	Types  Types
	Now    func() time.Time
}

// Passkey is one of a person's passkeys, as their profile lists it.
type Passkey struct {
	IDHash   string `json:"id"`
	Name     string `json:"name"`
	Created  string `json:"created_at"`
	LastUsed string `json:"last_used_at"`
}

// IDHash is the hex SHA-256 of a credential id: how the log and the pages
// name a passkey.
func IDHash(credentialID []byte) string {
	h := sha256.Sum256(credentialID)
	return hex.EncodeToString(h[:])
}

// ListPasskeys lists user's passkeys, oldest first.
func ListPasskeys(ctx context.Context, q events.Querier, user string) ([]Passkey, error) {
	rows, err := q.QueryContext(ctx, `SELECT id_hash, name, created_at, last_used_at FROM passkeys WHERE user_id = ? ORDER BY created_at, id_hash`, user)
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	defer rows.Close()
	var out []Passkey
	for rows.Next() {
		var p Passkey
		if err := rows.Scan(&p.IDHash, &p.Name, &p.Created, &p.LastUsed); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// passkeyUser is a person as WebAuthn sees them.
type passkeyUser struct {
	id, username, display string
	handle                []byte
	creds                 []webauthn.Credential
}

func (u *passkeyUser) WebAuthnID() []byte                         { return u.handle }
func (u *passkeyUser) WebAuthnName() string                       { return u.username }
func (u *passkeyUser) WebAuthnDisplayName() string                { return u.display }
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// load reads a person's handle and credentials; with create, a person
// without a handle gets one (outside the log: it is not history).
func (p *Passkeys) load(ctx context.Context, id string, create bool) (*passkeyUser, error) {
	u, err := Lookup(ctx, p.DB.Read, id)
	if err != nil {
		return nil, err
	}
	pu := &passkeyUser{id: u.ID, username: u.Username, display: u.DisplayName}
	err = p.DB.Read.QueryRowContext(ctx, `SELECT handle FROM passkey_handles WHERE user_id = ?`, id).Scan(&pu.handle)
	switch {
	case errors.Is(err, sql.ErrNoRows) && create:
		h := make([]byte, 32)
		rand.Read(h)
		if _, err := p.DB.Aux.ExecContext(ctx, `INSERT INTO passkey_handles (user_id, handle) VALUES (?, ?) ON CONFLICT (user_id) DO NOTHING`, id, h); err != nil {
			return nil, fmt.Errorf("store passkey handle: %w", err)
		}
		if err := p.DB.Aux.QueryRowContext(ctx, `SELECT handle FROM passkey_handles WHERE user_id = ?`, id).Scan(&pu.handle); err != nil {
			return nil, fmt.Errorf("read passkey handle: %w", err)
		}
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("read passkey handle: %w", err)
	}
	rows, err := p.DB.Read.QueryContext(ctx, `SELECT credential FROM passkeys WHERE user_id = ? ORDER BY created_at`, id)
	if err != nil {
		return nil, fmt.Errorf("read passkeys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var c webauthn.Credential
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("decode passkey: %w", err)
		}
		pu.creds = append(pu.creds, c)
	}
	return pu, rows.Err()
}

func (p *Passkeys) on() error {
	if p == nil || p.RP == nil {
		return errs.E(errs.NotFound, "passkeys are not set up on this site: its operator must start it with --base-url naming the site's address")
	}
	return nil
}

// Ceremony is what the server keeps between a ceremony's challenge and its
// answer: in the person's session (server side), taken out at the answer
// so it serves once.
type Ceremony struct {
	Session webauthn.SessionData `json:"session"`
	User    string               `json:"user,omitempty"` // adding: who asked
	Name    string               `json:"name,omitempty"` // adding: the name given
	// Joining with a passkey: the invitation (its secret's hash), the
	// username and display name the person chose.
	Invite      string `json:"invite,omitempty"`
	Username    string `json:"username,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
}

func checkPasskeyName(name string) error {
	if err := input.Line("name", "The passkey's name", name, 64); err != nil {
		return err
	}
	if name == "" {
		return errs.Field("name", "Give the passkey a name, such as “laptop” or “phone”, to tell it from others.")
	}
	return nil
}

// BeginAdd starts adding a passkey named name for user: the options for
// navigator.credentials.create and the ceremony to keep.
func (p *Passkeys) BeginAdd(ctx context.Context, user, name string) (*protocol.CredentialCreation, Ceremony, error) {
	if err := p.on(); err != nil {
		return nil, Ceremony{}, err
	}
	name = strings.TrimSpace(name)
	if err := checkPasskeyName(name); err != nil {
		return nil, Ceremony{}, err
	}
	u, err := p.load(ctx, user, true)
	if err != nil {
		return nil, Ceremony{}, err
	}
	if err := p.checkRoom(ctx, p.DB.Read, user, name); err != nil {
		return nil, Ceremony{}, err
	}
	exclude := make([]protocol.CredentialDescriptor, len(u.creds))
	for i := range u.creds {
		exclude[i] = u.creds[i].Descriptor()
	}
	opts, sd, err := p.RP.BeginRegistration(u, webauthn.WithExclusions(exclude),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: protocol.VerificationPreferred}),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))
	if err != nil {
		return nil, Ceremony{}, fmt.Errorf("begin passkey registration: %w", err)
	}
	return opts, Ceremony{Session: *sd, User: user, Name: name}, nil
}

// checkRoom refuses a name already given or a passkey over the limit.
func (p *Passkeys) checkRoom(ctx context.Context, q events.Querier, user, name string) error {
	var n, same int
	if err := q.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE name = ?) FROM passkeys WHERE user_id = ?`, name, user).Scan(&n, &same); err != nil {
		return fmt.Errorf("count passkeys: %w", err)
	}
	if same > 0 {
		return errs.Field("name", "You already have a passkey called %s; choose another name.", name)
	}
	if n >= MaxPasskeys {
		return errs.Field("name", "You have %d passkeys, the most one person may hold; remove one first.", n)
	}
	return nil
}

// errBadPasskey is the one answer for an answer that does not verify.
var errBadPasskey = errs.E(errs.Invalid, "The passkey's answer could not be verified; nothing was changed. Try again.")

// FinishAdd verifies the authenticator's answer (r's JSON body) against
// the ceremony and stores the passkey: passkey_added in the log, the
// credential beside it, in one transaction.
func (p *Passkeys) FinishAdd(ctx context.Context, user string, cer Ceremony, r *http.Request, commandID string) (Passkey, error) {
	if err := p.on(); err != nil {
		return Passkey{}, err
	}
	if cer.User != user || len(cer.Session.UserID) == 0 {
		return Passkey{}, errs.E(errs.Invalid, "No passkey is being added in this session (or it took longer than %s): start again.", ceremonyTTL)
	}
	u, err := p.load(ctx, user, false)
	if err != nil {
		return Passkey{}, err
	}
	if !bytes.Equal(u.handle, cer.Session.UserID) {
		return Passkey{}, errBadPasskey
	}
	cred, err := p.RP.FinishRegistration(u, cer.Session, r)
	if err != nil {
		return Passkey{}, errBadPasskey
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return Passkey{}, fmt.Errorf("encode passkey: %w", err)
	}
	pk := Passkey{IDHash: IDHash(cred.ID), Name: cer.Name, Created: p.now().UTC().Format(time.RFC3339Nano)}
	_, err = p.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: user,
		Fingerprint: events.Fingerprint("add_passkey", user, pk.IDHash),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if err := p.checkRoom(ctx, tx.Q(), user, cer.Name); err != nil {
				return nil, err
			}
			var taken int
			if err := tx.Q().QueryRowContext(ctx, `SELECT count(*) FROM passkeys WHERE credential_id = ?`, cred.ID).Scan(&taken); err != nil {
				return nil, fmt.Errorf("look up passkey: %w", err)
			}
			if taken > 0 {
				return nil, errs.E(errs.Conflict, "This passkey is already registered.")
			}
			v, _, err := tx.Last(ctx, Aggregate, user)
			if err != nil {
				return nil, err
			}
			return []events.Change{{AggregateType: Aggregate, AggregateID: user, Expect: v,
				Events: []events.Pending{p.Types.PasskeyAdded.New(PasskeyAdded{Name: cer.Name, CredentialIDHash: pk.IDHash})}}}, nil
		},
		After: func(ctx context.Context, q events.Querier, _ []events.Event) error {
			_, err := q.ExecContext(ctx, `INSERT INTO passkeys (id_hash, credential_id, user_id, name, credential, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
				pk.IDHash, cred.ID, user, pk.Name, raw, pk.Created)
			return err
		},
	})
	return pk, err
}

// Remove deletes one of user's passkeys (passkey_removed); it no longer
// signs anyone in.
func (p *Passkeys) Remove(ctx context.Context, user, idHash, commandID string) (string, error) {
	if err := p.on(); err != nil {
		return "", err
	}
	var name string
	_, err := p.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: user,
		Fingerprint: events.Fingerprint("remove_passkey", user, idHash),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			err := tx.Q().QueryRowContext(ctx, `SELECT name FROM passkeys WHERE id_hash = ? AND user_id = ?`, idHash, user).Scan(&name)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, errs.E(errs.NotFound, "You have no such passkey (it may have been removed already).")
			}
			if err != nil {
				return nil, fmt.Errorf("look up passkey: %w", err)
			}
			v, _, err := tx.Last(ctx, Aggregate, user)
			if err != nil {
				return nil, err
			}
			return []events.Change{{AggregateType: Aggregate, AggregateID: user, Expect: v,
				Events: []events.Pending{p.Types.PasskeyRemoved.New(PasskeyRemoved{Name: name, CredentialIDHash: idHash})}}}, nil
		},
		After: func(ctx context.Context, q events.Querier, _ []events.Event) error {
			_, err := q.ExecContext(ctx, `DELETE FROM passkeys WHERE id_hash = ? AND user_id = ?`, idHash, user)
			return err
		},
	})
	return name, err
}

// BeginLogin starts a usernameless sign-in: the browser offers the
// passkeys it holds for this site.
func (p *Passkeys) BeginLogin() (*protocol.CredentialAssertion, Ceremony, error) {
	if err := p.on(); err != nil {
		return nil, Ceremony{}, err
	}
	opts, sd, err := p.RP.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, Ceremony{}, fmt.Errorf("begin passkey sign-in: %w", err)
	}
	return opts, Ceremony{Session: *sd}, nil
}

// errPasskeySignIn is the one answer for a passkey that does not sign in:
// unknown, removed, a stale or replayed answer, a wrong signature.
var errPasskeySignIn = errs.E(errs.Unauthorized, "That passkey did not sign you in: it may have been removed, or the attempt took too long. Try again, or sign in with your password.")

// FinishLogin verifies a sign-in answer (r's JSON body) and returns who it
// signs in. The new sign count is stored (outside the log); an answer
// whose count went backwards (a cloned authenticator) is refused.
func (p *Passkeys) FinishLogin(ctx context.Context, cer Ceremony, r *http.Request) (string, error) {
	if err := p.on(); err != nil {
		return "", err
	}
	if cer.Session.Challenge == "" || len(cer.Session.UserID) != 0 {
		return "", errPasskeySignIn
	}
	handler := func(rawID, handle []byte) (webauthn.User, error) {
		var id string
		err := p.DB.Read.QueryRowContext(ctx, `SELECT user_id FROM passkey_handles WHERE handle = ?`, handle).Scan(&id)
		if err != nil {
			return nil, fmt.Errorf("unknown user handle")
		}
		return p.load(ctx, id, false)
	}
	wu, cred, err := p.RP.FinishPasskeyLogin(handler, cer.Session, r)
	if err != nil {
		return "", errPasskeySignIn
	}
	if cred.Authenticator.CloneWarning {
		return "", errPasskeySignIn
	}
	user := wu.(*passkeyUser).id
	raw, err := json.Marshal(cred)
	if err != nil {
		return "", fmt.Errorf("encode passkey: %w", err)
	}
	// One answer signs in once: the same challenge answered twice (two
	// requests racing with one session) updates the row only the first
	// time.
	res, err := p.DB.Aux.ExecContext(ctx, `UPDATE passkeys SET credential = ?, last_used_at = ?, last_challenge = ?
		WHERE credential_id = ? AND user_id = ? AND last_challenge != ?`,
		raw, p.now().UTC().Format(time.RFC3339Nano), cer.Session.Challenge, cred.ID, user, cer.Session.Challenge)
	if err != nil {
		return "", fmt.Errorf("store sign count: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 { // removed in between, or a replay
		return "", errPasskeySignIn
	}
	return user, nil
}

func (p *Passkeys) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}
