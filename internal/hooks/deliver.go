package hooks

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"braid/internal/access"
	"braid/internal/events"
)

// Options tune the Deliverer; zero values take the defaults.
type Options struct {
	AllowPrivate bool          // may send to loopback and private addresses
	Poll         time.Duration // how often to look for new events (default 1s)
	RetryBase    time.Duration // the first wait after a failure (default 10s); doubled each time
	RetryMax     time.Duration // the longest wait (default 1h)
	DisableAfter time.Duration // failing this long turns the webhook off (default 72h)
	Timeout      time.Duration // per attempt (default 10s)
}

// MaxResponse is how much of a receiver's answer is read.
const MaxResponse = 64 << 10

const batch = 100

// MaxLog is how many attempts the delivery log keeps per webhook.
const MaxLog = 1000

// Deliverer sends each active webhook the events of its project after its
// checkpoint, in order, one at a time: an event is retried with backoff
// until it is taken (any 2xx) and only then is the next one sent. Each
// webhook is worked on by at most one goroutine at once; the writer is
// used only to turn a failing webhook off.
type Deliverer struct {
	DB     *events.DB
	Writer *events.Writer
	Types  Types
	Opt    Options
	Clock  func() time.Time
	Log    *slog.Logger

	once   sync.Once
	client *http.Client
	mu     sync.Mutex
	busy   map[string]bool
	wg     sync.WaitGroup
}

func (d *Deliverer) init() {
	d.once.Do(func() {
		o := &d.Opt
		if o.Poll <= 0 {
			o.Poll = time.Second
		}
		if o.RetryBase <= 0 {
			o.RetryBase = 10 * time.Second
		}
		if o.RetryMax <= 0 {
			o.RetryMax = time.Hour
		}
		if o.DisableAfter <= 0 {
			o.DisableAfter = 72 * time.Hour
		}
		if o.Timeout <= 0 {
			o.Timeout = 10 * time.Second
		}
		if d.Clock == nil {
			d.Clock = time.Now
		}
		if d.Log == nil {
			d.Log = slog.New(slog.DiscardHandler)
		}
		dialer := &net.Dialer{Timeout: o.Timeout, Control: control(o.AllowPrivate)}
		d.client = &http.Client{
			Timeout: o.Timeout,
			Transport: &http.Transport{Proxy: nil, DialContext: dialer.DialContext, TLSHandshakeTimeout: o.Timeout,
				ResponseHeaderTimeout: o.Timeout, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute},
			// A redirect is not followed: it could point anywhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		d.busy = map[string]bool{}
	})
}

// Run delivers until ctx ends, then waits for the deliveries under way.
func (d *Deliverer) Run(ctx context.Context) {
	d.init()
	t := time.NewTicker(d.Opt.Poll)
	defer t.Stop()
	defer d.wg.Wait()
	for {
		d.Once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once starts a round for every webhook not already being worked on.
func (d *Deliverer) Once(ctx context.Context) {
	d.init()
	hs, err := List(ctx, d.DB.Read, "")
	if err != nil {
		if ctx.Err() == nil {
			d.Log.Error("webhooks", slog.Any("err", err))
		}
		return
	}
	for _, h := range hs {
		d.mu.Lock()
		if d.busy[h.ID] {
			d.mu.Unlock()
			continue
		}
		d.busy[h.ID] = true
		d.mu.Unlock()
		d.wg.Add(1)
		go func(h Webhook) {
			defer d.wg.Done()
			defer func() { d.mu.Lock(); delete(d.busy, h.ID); d.mu.Unlock() }()
			if err := d.round(ctx, h); err != nil && ctx.Err() == nil {
				d.Log.Error("webhook", slog.String("webhook", h.ID), slog.Any("err", err))
			}
		}(h)
	}
}

type checkpoint struct {
	position          int64
	attempts          int
	nextAt, failSince string
}

func (d *Deliverer) checkpoint(ctx context.Context, id string) (checkpoint, error) {
	var c checkpoint
	err := d.DB.Read.QueryRowContext(ctx, `SELECT position, attempts, next_at, failing_since FROM webhook_checkpoints WHERE webhook_id = ?`, id).
		Scan(&c.position, &c.attempts, &c.nextAt, &c.failSince)
	return c, err
}

func (d *Deliverer) save(ctx context.Context, id string, c checkpoint) error {
	_, err := d.DB.Aux.ExecContext(ctx, `INSERT INTO webhook_checkpoints (webhook_id, position, attempts, next_at, failing_since) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (webhook_id) DO UPDATE SET position = excluded.position, attempts = excluded.attempts, next_at = excluded.next_at, failing_since = excluded.failing_since`,
		id, c.position, c.attempts, c.nextAt, c.failSince)
	return err
}

// round does the redeliveries asked for, then sends the webhook's events
// after its checkpoint until one fails or none is left.
func (d *Deliverer) round(ctx context.Context, h Webhook) error {
	var secret string
	err := d.DB.Read.QueryRowContext(ctx, `SELECT secret FROM webhook_secrets WHERE webhook_id = ?`, h.ID).Scan(&secret)
	if errors.Is(err, sql.ErrNoRows) {
		// A log imported or mirrored from elsewhere: the secret stayed
		// there, so this copy sends nothing.
		return nil
	}
	if err != nil {
		return fmt.Errorf("read secret: %w", err)
	}
	if err := d.redeliver(ctx, h, secret); err != nil {
		return err
	}
	if !h.Active {
		return nil
	}
	c, err := d.checkpoint(ctx, h.ID)
	if errors.Is(err, sql.ErrNoRows) {
		c = checkpoint{position: h.Since}
	} else if err != nil {
		return err
	}
	now := d.Clock()
	if t, err := time.Parse(time.RFC3339Nano, c.nextAt); err == nil && now.Before(t) {
		return nil
	}
	for ctx.Err() == nil {
		evs, err := d.after(ctx, c.position)
		if err != nil || len(evs) == 0 {
			return err
		}
		for i := range evs {
			e := &evs[i]
			ok, err := d.wants(ctx, h, e)
			if err != nil {
				return err
			}
			if !ok {
				c.position = e.Position
				continue
			}
			if d.send(ctx, h, secret, e, c.attempts+1, false) {
				c = checkpoint{position: e.Position}
				if err := d.save(ctx, h.ID, c); err != nil {
					return err
				}
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return d.failed(ctx, h, c)
		}
		if err := d.save(ctx, h.ID, c); err != nil {
			return err
		}
	}
	return nil
}

// failed records one more failed attempt: the next waits twice as long
// (capped); failing past DisableAfter turns the webhook off.
func (d *Deliverer) failed(ctx context.Context, h Webhook, c checkpoint) error {
	now := d.Clock().UTC()
	c.attempts++
	if c.failSince == "" {
		c.failSince = now.Format(time.RFC3339Nano)
	}
	wait := d.Opt.RetryBase
	for i := 1; i < c.attempts && wait < d.Opt.RetryMax; i++ {
		wait *= 2
	}
	wait = min(wait, d.Opt.RetryMax)
	c.nextAt = now.Add(wait).Format(time.RFC3339Nano)
	if err := d.save(ctx, h.ID, c); err != nil {
		return err
	}
	since, _ := time.Parse(time.RFC3339Nano, c.failSince)
	if now.Sub(since) < d.Opt.DisableAfter {
		return nil
	}
	return d.disable(ctx, h, c.failSince)
}

// disable appends webhook_disabled (actor system), telling the project's
// owners in their inbox.
func (d *Deliverer) disable(ctx context.Context, h Webhook, since string) error {
	_, err := d.Writer.Do(ctx, events.Command{Actor: access.System, Fingerprint: events.Fingerprint("disable_failing_webhook", h.ID, since),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			w, err := Get(ctx, tx.Q(), h.Project, h.ID)
			if err != nil || !w.Active {
				return nil, err
			}
			holders, err := access.Holders(ctx, tx.Q(), h.Project)
			if err != nil {
				return nil, err
			}
			var owners []string
			for _, m := range holders {
				if m.Role == access.Owner.String() {
					owners = append(owners, m.Person)
				}
			}
			if len(owners) == 0 && w.CreatedBy != "" {
				owners = []string{w.CreatedBy} // a site admin's webhook in a project with no owner
			}
			v, _, err := tx.Last(ctx, Aggregate, h.ID)
			if err != nil {
				return nil, err
			}
			return []events.Change{{AggregateType: Aggregate, AggregateID: h.ID, Expect: v, Events: []events.Pending{
				d.Types.Disabled.New(Disabled{Webhook: h.ID, Project: h.Project, Reason: "failing", FailingSince: since, Notify: owners})}}}, nil
		}})
	if err == nil {
		d.Log.Warn("webhook turned off: failing too long", slog.String("webhook", h.ID), slog.String("since", since))
	}
	return err
}

// after reads up to batch events after position.
func (d *Deliverer) after(ctx context.Context, position int64) ([]events.Event, error) {
	rows, err := d.DB.Read.QueryContext(ctx, `SELECT position FROM events WHERE position > ? ORDER BY position LIMIT ?`, position, batch)
	if err != nil {
		return nil, err
	}
	var ps []int64
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, err
		}
		ps = append(ps, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]events.Event, 0, len(ps))
	for _, p := range ps {
		e, err := events.Get(ctx, d.DB.Read, p)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// wants says whether e is an event of h's project that h's filter takes:
// the project's own events, its tickets' and its webhooks'.
func (d *Deliverer) wants(ctx context.Context, h Webhook, e *events.Event) (bool, error) {
	if !h.Wants(e.Type) {
		return false, nil
	}
	switch e.AggregateType {
	case access.Aggregate:
		return e.AggregateID == h.Project, nil
	case "ticket":
		id, err := strconv.ParseInt(e.AggregateID, 10, 64)
		if err != nil {
			return false, nil
		}
		p, err := access.TicketProject(ctx, d.DB.Read, id)
		if err != nil {
			return false, nil
		}
		return p == h.Project, nil
	case Aggregate:
		var x struct{ Project string }
		_ = json.Unmarshal(e.Data, &x)
		return x.Project == h.Project, nil
	}
	return false, nil
}

// MessageID is the webhook-id of event position to webhook id: the same
// on every attempt and redelivery, so a receiver can drop duplicates.
func MessageID(webhook string, position int64) string {
	return "msg_" + webhook + "_" + strconv.FormatInt(position, 10)
}

// send makes one attempt and records it in the delivery log.
func (d *Deliverer) send(ctx context.Context, h Webhook, secret string, e *events.Event, attempt int, redelivery bool) bool {
	now := d.Clock()
	code, problem := d.post(ctx, h, secret, e, now)
	ok := problem == "" && code >= 200 && code < 300
	if problem == "" && !ok {
		problem = "the receiver answered " + strconv.Itoa(code)
	}
	if ctx.Err() != nil {
		return false // shutting down: not the receiver's failure
	}
	if _, err := d.DB.Aux.ExecContext(ctx, `INSERT INTO webhook_deliveries (webhook_id, position, event_type, attempt, ok, code, error, redelivery, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		h.ID, e.Position, e.Type, attempt, ok, code, problem, redelivery, now.UTC().Format(time.RFC3339Nano)); err != nil {
		d.Log.Error("webhook delivery log", slog.Any("err", err))
	}
	// The log keeps each webhook's latest MaxLog attempts.
	if _, err := d.DB.Aux.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE webhook_id = ? AND id <= (
		SELECT id FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`, h.ID, h.ID, MaxLog); err != nil {
		d.Log.Error("webhook delivery log", slog.Any("err", err))
	}
	return ok
}

func (d *Deliverer) post(ctx context.Context, h Webhook, secret string, e *events.Event, now time.Time) (int, string) {
	body, err := json.Marshal(e)
	if err != nil {
		return 0, "encode: " + err.Error()
	}
	id := MessageID(h.ID, e.Position)
	sig, err := Sign(secret, id, now, body)
	if err != nil {
		return 0, err.Error()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "bad address"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Braid-Webhooks/1")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := d.client.Do(req)
	if err != nil {
		var pe *errPrivate
		if errors.As(err, &pe) {
			return 0, pe.Error()
		}
		return 0, "no answer: " + shortErr(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponse))
	return resp.StatusCode, ""
}

func shortErr(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Op + ": " + oe.Err.Error()
	}
	return "request failed"
}

// redeliver sends again the events asked for on the delivery page.
func (d *Deliverer) redeliver(ctx context.Context, h Webhook, secret string) error {
	rows, err := d.DB.Read.QueryContext(ctx, `SELECT position FROM webhook_redeliveries WHERE webhook_id = ? ORDER BY position`, h.ID)
	if err != nil {
		return err
	}
	var ps []int64
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return err
		}
		ps = append(ps, p)
	}
	rows.Close()
	for _, p := range ps {
		e, err := events.Get(ctx, d.DB.Read, p)
		if err == nil {
			var n int
			d.DB.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ? AND position = ?`, h.ID, p).Scan(&n)
			d.send(ctx, h, secret, &e, n+1, true)
		}
		if ctx.Err() != nil {
			return nil
		}
		if _, err := d.DB.Aux.ExecContext(ctx, `DELETE FROM webhook_redeliveries WHERE webhook_id = ? AND position = ?`, h.ID, p); err != nil {
			return err
		}
	}
	return nil
}

// Redeliver asks for event position to be sent to webhook again (on the
// next round). Only positions it was sent before may be asked for.
func Redeliver(ctx context.Context, db *events.DB, webhook string, position int64) error {
	_, err := db.Aux.ExecContext(ctx, `INSERT OR IGNORE INTO webhook_redeliveries (webhook_id, position) VALUES (?, ?)`, webhook, position)
	return err
}

// Delivery is one attempt in the delivery log.
type Delivery struct {
	ID         int64  `json:"id"`
	Position   int64  `json:"position"`
	EventType  string `json:"event_type"`
	Attempt    int    `json:"attempt"`
	OK         bool   `json:"ok"`
	Code       int    `json:"code"`
	Error      string `json:"error,omitempty"`
	Redelivery bool   `json:"redelivery"`
	At         string `json:"at"`
}

// Deliveries is the webhook's delivery log, newest first.
func Deliveries(ctx context.Context, q events.Querier, webhook string, limit int) ([]Delivery, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, position, event_type, attempt, ok, code, error, redelivery, at FROM webhook_deliveries
		WHERE webhook_id = ? ORDER BY id DESC LIMIT ?`, webhook, limit)
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		var x Delivery
		if err := rows.Scan(&x.ID, &x.Position, &x.EventType, &x.Attempt, &x.OK, &x.Code, &x.Error, &x.Redelivery, &x.At); err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// Delivered says whether event position was ever sent to webhook.
func Delivered(ctx context.Context, q events.Querier, webhook string, position int64) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ? AND position = ?`, webhook, position).Scan(&n)
	return n > 0, err
}
