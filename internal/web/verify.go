package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"braid/internal/events"
	"braid/templates"
)

// AnchorCheck is one recorded anchor checked against the log: the hash it
// recorded at Position must be the log's hash there.
type AnchorCheck struct {
	ID         int64  `json:"id"`
	Position   int64  `json:"position"`
	Witness    string `json:"witness"`
	Hash       string `json:"hash"` // what the anchor recorded, hex
	AnchoredAt string `json:"anchored_at"`
	OK         bool   `json:"ok"`
	// Problem says what is wrong when OK is false.
	Problem string `json:"problem,omitempty"`
	// Receipt says what the witness's receipt check found, once there is
	// one ("" while receipts are not checked).
	Receipt string `json:"receipt,omitempty"`
}

// AnchorFunc checks the recorded anchors against the log.
type AnchorFunc func(ctx context.Context) ([]AnchorCheck, error)

// VerifyReport is the answer of `web verify --json` and of GET /verify as
// JSON (CONTRACT.md): the braid's verdict combined with the anchors'.
type VerifyReport struct {
	Intact  bool            `json:"intact"`
	Events  int64           `json:"events"`
	Head    string          `json:"head"`
	Failure *events.Failure `json:"failure"`
	Anchors []AnchorCheck   `json:"anchors"`
	// Note says what the check could not rule out.
	Note string `json:"note"`
}

// NewVerifyReport combines a verification of the braid with the anchor
// checks: the database is intact only if both are, and the failure shown is
// the one at the lowest position.
func NewVerifyReport(r events.Report, anchors []AnchorCheck) VerifyReport {
	if anchors == nil {
		anchors = []AnchorCheck{}
	}
	v := VerifyReport{Intact: r.Intact, Events: r.Events, Head: events.Hex(r.Head.Hash), Failure: r.Failure, Anchors: anchors}
	var last *AnchorCheck
	for i := range anchors {
		a := &anchors[i]
		if !a.OK && (v.Failure == nil || a.Position < v.Failure.Position) {
			v.Intact = false
			v.Failure = &events.Failure{Position: a.Position, Reason: a.Problem}
		}
		if a.OK && (last == nil || a.Position > last.Position) {
			last = a
		}
	}
	switch {
	case !v.Intact:
		v.Note = ""
	case len(anchors) == 0:
		v.Note = "checked against the log alone and no anchor: a log rewritten with freshly computed hashes would pass; anchor the head with `web anchor`"
	case last.Position < r.Head.Position:
		v.Note = fmt.Sprintf("checked against %d anchor(s), the latest at position %d (witness %s); the head (position %d) is not anchored: a tail rewritten after position %d with fresh hashes would pass; anchor it with `web anchor`",
			len(anchors), last.Position, last.Witness, r.Head.Position, last.Position)
	default:
		v.Note = fmt.Sprintf("checked against %d anchor(s); the head (position %d) is anchored (witness %s)", len(anchors), last.Position, last.Witness)
	}
	return v
}

// VerifyRun is one finished check, as the /verify page shows it.
type VerifyRun struct {
	Report VerifyReport
	At     time.Time     // when it started
	Took   time.Duration // how long it took
	Err    error         // the check could not run
}

// Monitor checks the braid in the background, one run at a time, and keeps
// the latest result. It reads only through the read pool, so it never waits
// for the writer, and a request never waits for a whole run.
type Monitor struct {
	ctx     context.Context
	read    events.Querier
	anchors AnchorFunc
	log     *slog.Logger
	maxAge  time.Duration
	now     func() time.Time

	mu      sync.Mutex
	running chan struct{} // closed when the current run ends; nil when idle
	last    *VerifyRun
}

// NewMonitor returns a monitor that verifies the log readable through read
// and, when anchors is not nil, checks the anchors with it. Runs stop when
// ctx ends. A result younger than maxAge is shown without a new run.
func NewMonitor(ctx context.Context, read events.Querier, anchors AnchorFunc, log *slog.Logger, maxAge time.Duration) *Monitor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Monitor{ctx: ctx, read: read, anchors: anchors, log: log, maxAge: maxAge, now: time.Now}
}

// Latest returns the latest finished run, if any.
func (m *Monitor) Latest() (VerifyRun, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		return VerifyRun{}, false
	}
	return *m.last, true
}

// Kick starts a run unless one is running or the latest is younger than
// the monitor's max age. It returns a channel closed when the current run
// (started now or before) ends, or nil when none was needed.
func (m *Monitor) Kick() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running != nil {
		return m.running
	}
	if m.last != nil && m.now().Sub(m.last.At) < m.maxAge {
		return nil
	}
	done := make(chan struct{})
	m.running = done
	go m.run(done)
	return done
}

func (m *Monitor) run(done chan struct{}) {
	start := m.now()
	run := VerifyRun{At: start}
	rep, err := events.Verify(m.ctx, m.read)
	var anchors []AnchorCheck
	if err == nil && m.anchors != nil {
		anchors, err = m.anchors(m.ctx)
	}
	if err != nil {
		run.Err = err
		m.log.Error("verify", slog.Any("err", err))
	} else {
		run.Report = NewVerifyReport(rep, anchors)
	}
	run.Took = m.now().Sub(start)
	m.mu.Lock()
	m.last = &run
	m.running = nil
	m.mu.Unlock()
	close(done)
}

// VerifyPage answers GET /verify: the latest check of the braid and the
// anchors, starting a new one in the background when the latest is stale.
// The first request waits a moment for the first check; none waits longer.
func VerifyPage(env *Env, m *Monitor) echo.HandlerFunc {
	return func(c echo.Context) error {
		done := m.Kick()
		run, ok := m.Latest()
		if !ok && done != nil {
			select {
			case <-done:
				run, ok = m.Latest()
			case <-time.After(2 * time.Second):
			case <-c.Request().Context().Done():
				return c.Request().Context().Err()
			}
		}
		if ok && run.Err != nil {
			return fmt.Errorf("verify: %w", run.Err)
		}
		if WantsJSON(c) {
			if !ok {
				return c.JSON(http.StatusAccepted, map[string]any{"checking": true})
			}
			return c.JSON(http.StatusOK, run.Report)
		}
		v := templates.VerifyView{Checked: ok, Running: done != nil}
		if ok {
			r := run.Report
			v.Intact, v.Events, v.Head, v.Note = r.Intact, r.Events, r.Head, r.Note
			if r.Failure != nil {
				v.FailPosition, v.FailReason = r.Failure.Position, r.Failure.Reason
			}
			v.Took = run.Took.Round(10 * time.Microsecond).String()
			v.At = run.At.UTC().Format(time.RFC3339)
			for _, a := range r.Anchors {
				v.Anchors = append(v.Anchors, templates.VerifyAnchor{ID: a.ID, Position: a.Position, Witness: a.Witness,
					Hash: a.Hash, AnchoredAt: a.AnchoredAt, OK: a.OK, Problem: a.Problem, Receipt: a.Receipt})
			}
		}
		return Render(c, http.StatusOK, templates.Verify(env.Page(c, "Verify", "verify"), v))
	}
}
