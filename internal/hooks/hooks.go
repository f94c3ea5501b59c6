// Package hooks sends a project's events to the webhooks its owners set
// up. A webhook (its address and the event types it wants) is an aggregate
// of the log; its secret, its checkpoint and its delivery log live outside
// the log on purpose (delivering is a side effect, not a fact of the
// tracker). A Deliverer reads the log on its own goroutines, so a slow or
// dead receiver never holds up a command.
package hooks

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
)

// Aggregate is the aggregate type of webhooks; its id is the webhook's id.
const Aggregate = "webhook"

// Limits.
const (
	MaxURL        = 2000
	MaxEventTypes = 50
	MaxPerProject = 20 // webhooks a project may have, on or off
)

// Payloads, stored under stable names. None holds the secret.
type (
	// Created: a webhook of Project sending to URL the events of the
	// types listed (none: every event of the project).
	Created struct {
		Webhook    string   `json:"webhook"`
		Project    string   `json:"project"`
		URL        string   `json:"url"`
		EventTypes []string `json:"event_types"`
	}
	// Changed: a new address or filter.
	Changed struct {
		Webhook    string   `json:"webhook"`
		Project    string   `json:"project"`
		URL        string   `json:"url"`
		EventTypes []string `json:"event_types"`
	}
	// Disabled: deliveries stop. Reason is "by hand" or "failing"; when
	// failing, Notify lists the project's owners told in their inbox.
	Disabled struct {
		Webhook      string   `json:"webhook"`
		Project      string   `json:"project"`
		Reason       string   `json:"reason"`
		FailingSince string   `json:"failing_since,omitempty"`
		Notify       []string `json:"notify,omitempty"`
	}
	// Enabled: deliveries start again from where they stopped.
	Enabled struct {
		Webhook string `json:"webhook"`
		Project string `json:"project"`
	}
)

// Types are the webhook event types.
type Types struct {
	Created  events.Type[Created]
	Changed  events.Type[Changed]
	Disabled events.Type[Disabled]
	Enabled  events.Type[Enabled]
}

// Register defines the webhook event types and their projection.
func Register(reg *events.Registry) Types {
	t := Types{
		Created:  events.Define[Created](reg, "webhook_created", 1),
		Changed:  events.Define[Changed](reg, "webhook_changed", 1),
		Disabled: events.Define[Disabled](reg, "webhook_disabled", 1),
		Enabled:  events.Define[Enabled](reg, "webhook_enabled", 1),
	}
	p := reg.NewProjection("hooks", "webhooks")
	events.On(reg, p, t.Created, func(ctx context.Context, q events.Querier, e *events.Event, d Created) error {
		_, err := q.ExecContext(ctx, `INSERT INTO webhooks (id, project, url, event_types, active, created_by, created_at, since) VALUES (?, ?, ?, ?, 1, ?, ?, ?)`,
			d.Webhook, d.Project, d.URL, strings.Join(d.EventTypes, ","), e.Actor, e.OccurredAt, e.Position)
		return err
	})
	events.On(reg, p, t.Changed, func(ctx context.Context, q events.Querier, e *events.Event, d Changed) error {
		_, err := q.ExecContext(ctx, `UPDATE webhooks SET url = ?, event_types = ? WHERE id = ?`, d.URL, strings.Join(d.EventTypes, ","), d.Webhook)
		return err
	})
	events.On(reg, p, t.Disabled, func(ctx context.Context, q events.Querier, e *events.Event, d Disabled) error {
		_, err := q.ExecContext(ctx, `UPDATE webhooks SET active = 0, disabled_reason = ? WHERE id = ?`, d.Reason, d.Webhook)
		return err
	})
	events.On(reg, p, t.Enabled, func(ctx context.Context, q events.Querier, e *events.Event, d Enabled) error {
		_, err := q.ExecContext(ctx, `UPDATE webhooks SET active = 1, disabled_reason = '' WHERE id = ?`, d.Webhook)
		return err
	})
	return t
}

// Webhook is one webhook as the projection has it.
type Webhook struct {
	ID             string   `json:"id"`
	Project        string   `json:"project"`
	URL            string   `json:"url"`
	EventTypes     []string `json:"event_types"`
	Active         bool     `json:"active"`
	DisabledReason string   `json:"disabled_reason,omitempty"`
	CreatedBy      string   `json:"created_by"`
	CreatedAt      string   `json:"created_at"`
	Since          int64    `json:"since"`
}

// Wants says whether the webhook's filter takes events of type typ.
func (w *Webhook) Wants(typ string) bool {
	if len(w.EventTypes) == 0 {
		return true
	}
	for _, t := range w.EventTypes {
		if t == typ {
			return true
		}
	}
	return false
}

const columns = `id, project, url, event_types, active, disabled_reason, created_by, created_at, since`

func scan(s interface{ Scan(...any) error }) (Webhook, error) {
	var w Webhook
	var types string
	err := s.Scan(&w.ID, &w.Project, &w.URL, &types, &w.Active, &w.DisabledReason, &w.CreatedBy, &w.CreatedAt, &w.Since)
	w.EventTypes = splitTypes(types)
	return w, err
}

func splitTypes(s string) []string {
	out := []string{}
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// Get reads one webhook of project; not_found when there is none.
func Get(ctx context.Context, q events.Querier, project, id string) (Webhook, error) {
	w, err := scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM webhooks WHERE id = ? AND project = ?`, id, project))
	if errors.Is(err, sql.ErrNoRows) {
		return w, errs.E(errs.NotFound, "There is no webhook %q in this project.", id)
	}
	if err != nil {
		return w, fmt.Errorf("read webhook: %w", err)
	}
	return w, nil
}

// List lists the webhooks of project ("" for every project's), oldest first.
func List(ctx context.Context, q events.Querier, project string) ([]Webhook, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+columns+` FROM webhooks WHERE ? = '' OR project = ? ORDER BY since`, project, project)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	defer rows.Close()
	out := []Webhook{}
	for rows.Next() {
		w, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// newID is a webhook's id: w_ and 16 hex digits.
func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return "w_" + hex.EncodeToString(b[:])
}

// NewSecret is a signing secret as the Standard Webhooks spec writes one:
// whsec_ and the base64 of 32 random bytes.
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:])
}

// ParseTypes reads the event filter as typed: names separated by commas or
// spaces, each one the registry knows.
func ParseTypes(reg *events.Registry, s string) ([]string, error) {
	if err := input.Line("events", "The event types", s, 4000); err != nil {
		return nil, err
	}
	out := []string{}
	seen := map[string]bool{}
	for _, t := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if !reg.Known(t) {
			return nil, errs.Field("events", "There is no event type %q.", t)
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	if len(out) > MaxEventTypes {
		return nil, errs.Field("events", "At most %d event types.", MaxEventTypes)
	}
	return out, nil
}

// Service runs the webhook commands through the writer.
type Service struct {
	Writer   *events.Writer
	Registry *events.Registry
	Types    Types
	// Check refuses an address the deliverer may not send to (CheckURL
	// with the site's setting).
	Check func(ctx context.Context, raw string) error
}

// Create makes a webhook in project and returns its id and secret (""
// when the same command was sent before: the secret was shown then).
func (s *Service) Create(ctx context.Context, actor, project, rawURL, types, commandID string) (id, secret string, err error) {
	rawURL = strings.TrimSpace(rawURL)
	fields := map[string]string{}
	uerr := s.checkURL(ctx, rawURL)
	if uerr != nil {
		fields["url"] = errs.Fields(uerr)["url"]
	}
	ts, terr := ParseTypes(s.Registry, types)
	if terr != nil {
		fields["events"] = errs.Fields(terr)["events"]
	}
	id, secret = newID(), NewSecret()
	res, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: actor, Kind: "webhook_create",
		Fingerprint: events.Fingerprint("create_webhook", project, rawURL, strings.Join(ts, ",")),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if err := access.Can(ctx, tx.Q(), actor, access.ManageWebhooks, project); err != nil {
				return nil, err
			}
			if len(fields) > 0 {
				return nil, &errs.Error{Code: errs.Invalid, Message: "Please fix the fields marked below.", Fields: fields}
			}
			var n int
			if err := tx.Q().QueryRowContext(ctx, `SELECT COUNT(*) FROM webhooks WHERE project = ?`, project).Scan(&n); err != nil {
				return nil, err
			}
			if n >= MaxPerProject {
				return nil, errs.Field("url", "A project may have at most %d webhooks; change or reuse one.", MaxPerProject)
			}
			return []events.Change{{AggregateType: Aggregate, AggregateID: id, Expect: 0,
				Events: []events.Pending{s.Types.Created.New(Created{Webhook: id, Project: project, URL: rawURL, EventTypes: ts})}}}, nil
		},
		After: func(ctx context.Context, q events.Querier, appended []events.Event) error {
			if _, err := q.ExecContext(ctx, `INSERT INTO webhook_secrets (webhook_id, secret) VALUES (?, ?)`, id, secret); err != nil {
				return err
			}
			_, err := q.ExecContext(ctx, `INSERT INTO webhook_checkpoints (webhook_id, position) VALUES (?, ?)`, id, appended[0].Position)
			return err
		},
	})
	if err != nil {
		return "", "", err
	}
	if res.Repeated {
		var d Created
		if len(res.Events) > 0 {
			d, _ = s.Types.Created.Decode(s.Registry, &res.Events[0])
		}
		return d.Webhook, "", nil
	}
	return id, secret, nil
}

func (s *Service) checkURL(ctx context.Context, raw string) error {
	if raw == "" {
		return errs.Field("url", "A webhook needs an address.")
	}
	if err := input.Line("url", "The address", raw, MaxURL); err != nil {
		return err
	}
	if s.Check == nil {
		return nil
	}
	return s.Check(ctx, raw)
}

// do runs one command on an existing webhook of project.
func (s *Service) do(ctx context.Context, actor, project, id, commandID, fp string, decide func(w Webhook) (events.Pending, error)) error {
	_, err := s.Writer.Do(ctx, events.Command{
		ID: commandID, Actor: actor, Fingerprint: fp,
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			if err := access.Can(ctx, tx.Q(), actor, access.ManageWebhooks, project); err != nil {
				return nil, err
			}
			w, err := Get(ctx, tx.Q(), project, id)
			if err != nil {
				return nil, err
			}
			e, err := decide(w)
			if err != nil {
				return nil, err
			}
			v, _, err := tx.Last(ctx, Aggregate, id)
			if err != nil {
				return nil, err
			}
			return []events.Change{{AggregateType: Aggregate, AggregateID: id, Expect: v, Events: []events.Pending{e}}}, nil
		},
	})
	return err
}

// Change sets a webhook's address and filter.
func (s *Service) Change(ctx context.Context, actor, project, id, rawURL, types, commandID string) error {
	rawURL = strings.TrimSpace(rawURL)
	fields := map[string]string{}
	if err := s.checkURL(ctx, rawURL); err != nil {
		fields["url"] = errs.Fields(err)["url"]
	}
	ts, terr := ParseTypes(s.Registry, types)
	if terr != nil {
		fields["events"] = errs.Fields(terr)["events"]
	}
	return s.do(ctx, actor, project, id, commandID, events.Fingerprint("change_webhook", id, rawURL, strings.Join(ts, ",")), func(w Webhook) (events.Pending, error) {
		if len(fields) > 0 {
			return events.Pending{}, &errs.Error{Code: errs.Invalid, Message: "Please fix the fields marked below.", Fields: fields}
		}
		if w.URL == rawURL && strings.Join(w.EventTypes, ",") == strings.Join(ts, ",") {
			return events.Pending{}, errs.Field("url", "The webhook is like that already.")
		}
		return s.Types.Changed.New(Changed{Webhook: id, Project: project, URL: rawURL, EventTypes: ts}), nil
	})
}

// Disable stops a webhook's deliveries by hand.
func (s *Service) Disable(ctx context.Context, actor, project, id, commandID string) error {
	return s.do(ctx, actor, project, id, commandID, events.Fingerprint("disable_webhook", id), func(w Webhook) (events.Pending, error) {
		if !w.Active {
			return events.Pending{}, errs.E(errs.Conflict, "The webhook is off already.")
		}
		return s.Types.Disabled.New(Disabled{Webhook: id, Project: project, Reason: "by hand"}), nil
	})
}

// Enable starts a webhook's deliveries again, from its checkpoint.
func (s *Service) Enable(ctx context.Context, actor, project, id, commandID string) error {
	return s.do(ctx, actor, project, id, commandID, events.Fingerprint("enable_webhook", id), func(w Webhook) (events.Pending, error) {
		if w.Active {
			return events.Pending{}, errs.E(errs.Conflict, "The webhook is on already.")
		}
		return s.Types.Enabled.New(Enabled{Webhook: id, Project: project}), nil
	})
}
