// Package stream serves catch-up subscriptions to the log: GET
// /events/stream answers Server-Sent Events, every event after a position
// read from the log in pages, then the live ones as the writer commits
// them (events.Hub). Only events of projects the person may read are sent.
package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"braid/internal/access"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/web"
)

// Defaults of Handler's limits.
const (
	DefaultBuffer    = 256 // batches a subscriber may be behind before it is dropped
	DefaultPerPerson = 8
	DefaultTotal     = 500

	pageSize  = 500
	heartbeat = 15 * time.Second
	// writeWait is how long one write to a client may take; past it the
	// connection is given up (the client is gone or stalled for good).
	writeWait = 30 * time.Second
	maxTypes  = 20
)

// Handler serves GET /events/stream.
type Handler struct {
	Env *web.Env
	Hub *events.Hub
	// Buffer is each subscriber's buffer in committed batches; PerPerson
	// and Total cap the open streams. Zero takes the default.
	Buffer, PerPerson, Total int
	// Heartbeat is the interval of the keep-alive comment (default 15 s).
	Heartbeat time.Duration

	mu     sync.Mutex
	open   map[string]int
	nOpen  int
	closed bool
}

func orDefault(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

// acquire takes a stream slot for person, or says why not.
func (h *Handler) acquire(person string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open == nil {
		h.open = map[string]int{}
	}
	switch {
	case h.nOpen >= orDefault(h.Total, DefaultTotal):
		return errs.E(errs.TooMany, "The server has as many live streams open as it allows; try again in a minute.")
	case h.open[person] >= orDefault(h.PerPerson, DefaultPerPerson):
		return errs.E(errs.TooMany, "You have %d live streams open already (the limit): close a tab or a client first.", h.open[person])
	}
	h.open[person]++
	h.nOpen++
	return nil
}

func (h *Handler) release(person string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nOpen--
	if h.open[person]--; h.open[person] <= 0 {
		delete(h.open, person)
	}
}

var name = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// request is what a stream asks for.
type request struct {
	page   bool // ?names=page: the SSE event names are "ticket" and "comments" (live pages)
	after  int64
	filter events.Filter
}

// parse reads Last-Event-ID (first) or ?after, and the filters.
func parse(c echo.Context) (request, error) {
	var r request
	q := c.QueryParams()
	field, s := "after", q.Get("after")
	if id := c.Request().Header.Get("Last-Event-ID"); id != "" {
		field, s = "Last-Event-ID", id
	}
	if s != "" {
		p, err := strconv.ParseInt(s, 10, 64)
		if err != nil || p < 0 {
			return r, errs.Field(field, "%s is a log position, a whole number from 0; got %q.", field, s)
		}
		r.after = p
	}
	if t := q.Get("aggregate_type"); t != "" {
		if !name.MatchString(t) {
			return r, errs.Field("aggregate_type", "aggregate_type is a lowercase name such as ticket; got %q.", t)
		}
		r.filter.AggregateType = t
	}
	if t := q.Get("ticket"); t != "" {
		id, err := strconv.ParseInt(t, 10, 64)
		if err != nil || id < 1 {
			return r, errs.Field("ticket", "ticket is a ticket number; got %q.", t)
		}
		if r.filter.AggregateType != "" && r.filter.AggregateType != "ticket" {
			return r, errs.Field("ticket", "ticket filters ticket events: it cannot go with aggregate_type %q.", r.filter.AggregateType)
		}
		r.filter.AggregateType, r.filter.AggregateID = "ticket", strconv.FormatInt(id, 10)
	}
	r.page = q.Get("names") == "page"
	types := q["type"]
	if len(types) > maxTypes {
		return r, errs.Field("type", "At most %d event types may be asked for at once.", maxTypes)
	}
	for _, t := range types {
		if !name.MatchString(t) {
			return r, errs.Field("type", "type is an event type such as comment_added; got %q.", t)
		}
		r.filter.Types = append(r.filter.Types, t)
	}
	return r, nil
}

// Stream answers GET /events/stream.
func (h *Handler) Stream(c echo.Context) error {
	// A refusal before the stream starts is for a program (an EventSource
	// or a script), never a page: the error table's JSON.
	c.Request().Header.Set(echo.HeaderAccept, echo.MIMEApplicationJSON)
	ctx := c.Request().Context()
	u, ok := web.CurrentUser(ctx)
	if !ok {
		return errs.E(errs.Unauthorized, "Sign in to follow the log.")
	}
	r, err := parse(c)
	if err != nil {
		return err
	}
	if r.filter.AggregateID != "" {
		id, _ := strconv.ParseInt(r.filter.AggregateID, 10, 64)
		if err := access.CanTicket(ctx, h.Env.DB.Read, u.ID, access.Read, id); err != nil {
			return err
		}
	}
	if err := h.acquire(u.ID); err != nil {
		c.Response().Header().Set("Retry-After", "60")
		return err
	}
	defer h.release(u.ID)
	s := &session{h: h, c: c, ctx: ctx, person: u.ID, filter: r.filter, last: r.after, page: r.page,
		rc: http.NewResponseController(c.Response()), projects: map[string]string{}}
	if err := s.refresh(); err != nil {
		return err
	}
	// The stream outlives any write timeout of the server: each write
	// gets its own deadline instead (writeWait).
	_ = s.rc.SetWriteDeadline(time.Time{})
	hd := c.Response().Header()
	hd.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	hd.Set("X-Accel-Buffering", "no") // no buffering in a reverse proxy
	c.Response().WriteHeader(http.StatusOK)
	if err := s.write(fmt.Sprintf("retry: 3000\n: events after %d\n\n", r.after)); err != nil {
		return nil
	}
	s.run()
	return nil
}

// session is one open stream.
type session struct {
	h        *Handler
	c        echo.Context
	ctx      context.Context
	rc       *http.ResponseController
	person   string
	filter   events.Filter
	page     bool
	last     int64 // the last position the client was sent (or skipped past)
	visible  map[string]bool
	all      bool
	projects map[string]string // ticket id → project, for this stream
	checked  time.Time
	failed   bool // a write failed: the client is gone
}

// refresh reads which projects the person may read.
func (s *session) refresh() error {
	slugs, all, err := access.Visible(s.ctx, s.h.Env.DB.Read, s.person)
	if err != nil {
		return err
	}
	s.all, s.visible, s.checked = all, map[string]bool{}, time.Now()
	for _, p := range slugs {
		s.visible[p] = true
	}
	return nil
}

// run sends the catch-up, then the live events, until the client leaves,
// falls too far behind or the server shuts down.
func (s *session) run() {
	if !s.catchUp() {
		return
	}
	sub, err := s.h.Hub.Subscribe(orDefault(s.h.Buffer, DefaultBuffer))
	if err != nil {
		s.close(events.ReasonShutdown)
		return
	}
	defer sub.Close()
	ended := make(chan struct{})
	defer close(ended)
	go func() {
		// Said when it happens: the stream itself may be stuck in a write.
		select {
		case <-sub.Gone():
			if s.h.Env.Log != nil {
				s.h.Env.Log.Info("live stream dropped", slog.String("reason", sub.Reason()), slog.String("person", s.person))
			}
		case <-ended:
		}
	}()
	// What committed between the last read and the subscription.
	if !s.catchUp() {
		return
	}
	every := s.h.Heartbeat
	if every <= 0 {
		every = heartbeat
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-sub.Gone():
			s.close(sub.Reason())
			return
		case <-tick.C:
			if time.Since(s.checked) >= every {
				if s.refresh() != nil {
					return
				}
			}
			if s.write(": heartbeat\n\n") != nil {
				return
			}
		case batch := <-sub.C():
			if r := sub.Reason(); r != "" {
				s.close(r) // dropped meanwhile: what is buffered is not sent
				return
			}
			// Events committed that the client has not had and the batch
			// does not carry (they were appended before the subscription,
			// committed after the read above): from the log.
			upTo := batch.Head
			if len(batch.Events) > 0 {
				upTo = batch.Events[0].Position - 1
			}
			if upTo > s.last && !s.catchUpTo(upTo) {
				return
			}
			if !s.send(batch.Events) {
				return
			}
		}
	}
}

// catchUp sends every event after s.last from the log, in pages; false
// when the stream must end.
func (s *session) catchUp() bool { return s.catchUpTo(1<<63 - 1) }

func (s *session) catchUpTo(upTo int64) bool {
	for {
		evs, err := events.After(s.ctx, s.h.Env.DB.Read, s.last, pageSize, s.filter)
		if err != nil {
			return false
		}
		n := len(evs)
		for len(evs) > 0 && evs[len(evs)-1].Position > upTo {
			evs = evs[:len(evs)-1]
		}
		if !s.send(evs) {
			return false
		}
		if len(evs) < n || n < pageSize {
			if s.last < upTo && upTo != 1<<63-1 {
				s.last = upTo // the filter skipped the rest
			}
			return true
		}
	}
}

// send writes the events of evs the client has not had, that match the
// filter and that it may read, and flushes once.
func (s *session) send(evs []events.Event) bool {
	var buf []byte
	for i := range evs {
		e := evs[i] // a copy: live batches are shared
		if e.Position <= s.last {
			continue
		}
		s.last = e.Position
		if !s.filter.Match(&e) {
			continue
		}
		if e.AggregateType == access.Aggregate || strings.Contains(e.Type, "role") {
			// Roles may have changed: read them again before judging.
			if err := s.refresh(); err != nil {
				return false
			}
		}
		ok, err := s.readable(&e)
		if err != nil {
			return false
		}
		if !ok {
			continue
		}
		s.redact(&e)
		data, err := json.Marshal(&e)
		if err != nil {
			return false
		}
		name := e.Type
		if s.page { // pages speak to people: no event types in their HTML
			name = "ticket"
			if strings.HasPrefix(e.Type, "comment_") {
				name = "comments"
			}
		}
		buf = fmt.Appendf(buf, "id: %d\nevent: %s\ndata: %s\n\n", e.Position, name, data)
		if len(buf) > 64<<10 {
			if s.write(string(buf)) != nil {
				return false
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		return s.write(string(buf)) == nil
	}
	return true
}

// write sends text to the client and flushes it, within writeWait.
func (s *session) write(text string) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(writeWait))
	if _, err := s.c.Response().Write([]byte(text)); err != nil {
		s.failed = true
		return err
	}
	if err := s.rc.Flush(); err != nil {
		s.failed = true
		return err
	}
	return nil
}

// close tells the client why the stream ends and where to resume.
func (s *session) close(reason string) {
	data, _ := json.Marshal(map[string]any{"reason": reason, "resume_after": s.last})
	_ = s.write(fmt.Sprintf("event: close\ndata: %s\n\n", data))
}

// readable says whether the person may read e: an event of a ticket or a
// project, or one naming a ticket or a project in its payload (a watch, an
// invitation), is theirs to see only when they may read that project.
func (s *session) readable(e *events.Event) (bool, error) {
	if s.all {
		return true, nil
	}
	var project string
	switch e.AggregateType {
	case "ticket":
		p, err := s.ticketProject(e.AggregateID)
		if err != nil {
			return false, err
		}
		project = p
	case access.Aggregate:
		project = e.AggregateID
	default:
		var ref struct {
			Project string          `json:"project"`
			Ticket  json.RawMessage `json:"ticket"`
		}
		_ = json.Unmarshal(e.Data, &ref)
		project = ref.Project
		if t := string(ref.Ticket); t != "" && t != "null" {
			p, err := s.ticketProject(trimQuotes(t))
			if err != nil {
				return false, err
			}
			project = p
		}
		if project == "" {
			return true, nil // a site event, as on /events
		}
	}
	return project != "" && s.visible[project], nil
}

func trimQuotes(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// ticketProject is the project of a ticket ("" for none), remembered for
// the stream (a ticket stays in its project).
func (s *session) ticketProject(id string) (string, error) {
	if p, ok := s.projects[id]; ok {
		return p, nil
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return "", nil
	}
	p, err := access.TicketProject(s.ctx, s.h.Env.DB.Read, n)
	if errs.Code(err) == errs.NotFound {
		p, err = "", nil
	}
	if err != nil {
		return "", err
	}
	if len(s.projects) > 10000 {
		clear(s.projects)
	}
	s.projects[id] = p
	return p, nil
}

// redact hides the payload of a private event from everyone but its actor,
// as the activity pages do.
func (s *session) redact(e *events.Event) {
	if s.h.Env.Private != nil && s.h.Env.Private(e.Type) && e.Actor != s.person {
		e.Data = []byte(`{"hidden":"personal data, shown only to the person it belongs to"}`)
	}
}
