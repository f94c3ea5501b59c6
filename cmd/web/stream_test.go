package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"braid/internal/events"
)

// sseEvent is one Server-Sent Event as a client reads it.
type sseEvent struct {
	id   int64
	typ  string
	data string
}

// sseConn is an open GET /events/stream, read in the background.
type sseConn struct {
	tb     testing.TB
	res    *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

// stream opens path as b (with its cookies), expecting 200 and an event
// stream; hdr are header names and values.
func (b *browser) stream(path string, hdr ...string) *sseConn {
	b.tb.Helper()
	s := b.streamWith(b.c, path, hdr...)
	go s.read()
	return s
}

// streamWith opens path with client c and reads nothing until read runs.
func (b *browser) streamWith(c *http.Client, path string, hdr ...string) *sseConn {
	b.tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", b.base+path, nil)
	if err != nil {
		b.tb.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		cancel()
		b.tb.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		res.Body.Close()
		cancel()
		b.tb.Fatalf("GET %s: got %d %s, want 200 text/event-stream", path, res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &sseConn{tb: b.tb, res: res, events: make(chan sseEvent, 1<<16), cancel: cancel}
	b.tb.Cleanup(s.close)
	return s
}

func (s *sseConn) read() {
	defer close(s.events)
	r := bufio.NewReaderSize(s.res.Body, 1<<16)
	var e sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if e.data != "" {
				s.events <- e
			}
			e = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			e.id, _ = strconv.ParseInt(line[4:], 10, 64)
		case strings.HasPrefix(line, "event: "):
			e.typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			e.data = line[6:]
		}
	}
}

func (s *sseConn) close() { s.cancel(); s.res.Body.Close() }

// next returns the next event, failing the test when none comes in 20 s
// (a hang, not a measure of speed).
func (s *sseConn) next() sseEvent {
	s.tb.Helper()
	select {
	case e, ok := <-s.events:
		if !ok {
			s.tb.Fatalf("the stream ended")
		}
		return e
	case <-time.After(20 * time.Second):
		s.tb.Fatalf("no event in 20 s")
	}
	return sseEvent{}
}

// until reads events up to and including the first for which stop holds.
func (s *sseConn) until(stop func(sseEvent) bool) []sseEvent {
	s.tb.Helper()
	var out []sseEvent
	for {
		e := s.next()
		out = append(out, e)
		if stop(e) {
			return out
		}
	}
}

// wireEvent is an event as the JSON answers carry it.
type wireEvent struct {
	Position      int64  `json:"position"`
	AggregateType string `json:"aggregate_type"`
	AggregateID   string `json:"aggregate_id"`
	Type          string `json:"event_type"`
	Data          string `json:"data"`
}

// head is the log's last position, from GET /events.
func head(tb testing.TB, b *browser) int64 {
	tb.Helper()
	a := b.do("GET", "/events", nil, "Accept", "application/json")
	var v struct {
		Events []wireEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(a.body), &v); err != nil || len(v.Events) == 0 {
		tb.Fatalf("GET /events: %v %.300s", err, a.body)
	}
	return v.Events[0].Position
}

// Every event after P from the log, in order, each as /events/{p} answers
// it, then a live one as it commits.
func TestStreamCatchUpThenLive(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	tk := ada.open("Printer on fire")
	h := head(t, ada)
	c := ada.stream("/events/stream?after=1")
	for p := int64(2); p <= h; p++ {
		e := c.next()
		if e.id != p {
			t.Fatalf("catch-up: got position %d, want %d", e.id, p)
		}
		want := ada.do("GET", "/events/"+strconv.FormatInt(p, 10), nil, "Accept", "application/json")
		var got, exp wireEvent
		if json.Unmarshal([]byte(e.data), &got) != nil || json.Unmarshal([]byte(want.body), &exp) != nil {
			t.Fatalf("event %d: data %q is not the event's JSON %q", p, e.data, want.body)
		}
		if e.data != strings.TrimSpace(want.body) || e.typ != exp.Type {
			t.Fatalf("event %d: got %s %s, want %s %s", p, e.typ, e.data, exp.Type, want.body)
		}
	}
	ada.comment(tk, "It is out now.")
	live := c.until(func(e sseEvent) bool { return e.typ == "comment_added" })
	for i, e := range live {
		if e.id != h+1+int64(i) {
			t.Fatalf("live: got position %d, want %d", e.id, h+1+int64(i))
		}
	}
	if !strings.Contains(live[len(live)-1].data, "It is out now.") {
		t.Fatalf("live comment: %s", live[len(live)-1].data)
	}
}

// A client that disconnects at random points and resumes with
// Last-Event-ID (over a contradicting ?after) while the writer commits
// sees every event once: no gap, no duplicate.
func TestStreamResumesExactly(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	tk := ada.open("Flaky network")
	fields := ada.form(tk, tk+"/comments", nil)
	const n = 60
	done := make(chan int64)
	go func() {
		for i := range n {
			fields.Set("command_id", events.NewID())
			fields.Set("body", fmt.Sprintf("comment %d", i))
			if a := ada.post(tk+"/comments", fields); a.status != http.StatusSeeOther {
				t.Errorf("comment %d: got %d", i, a.status)
			}
		}
		done <- 0
	}()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	var seen []int64
	last := int64(-1)
	final := int64(-1) // the head once every comment is in
	for final < 0 || last != final {
		var c *sseConn
		if last < 0 {
			c, last = ada.stream("/events/stream"), 0
		} else {
			c = ada.stream("/events/stream?after=0", "Last-Event-ID", strconv.FormatInt(last, 10))
		}
		for k := 1 + rng.IntN(8); k > 0 && last != final; k-- {
			select {
			case <-done:
				final = head(t, ada)
				k++
				continue
			case e, ok := <-c.events:
				if !ok {
					t.Fatalf("the stream ended")
				}
				if e.id != last+1 {
					t.Fatalf("got position %d after %d: a gap or a duplicate", e.id, last)
				}
				seen = append(seen, e.id)
				last = e.id
			case <-time.After(20 * time.Second):
				t.Fatalf("no event in 20 s after %d", last)
			}
		}
		c.close()
	}
	for i, p := range seen {
		if p != int64(i+1) {
			t.Fatalf("position %d at index %d (seen %v): a gap or a duplicate", p, i, seen)
		}
	}
	if int64(len(seen)) != final || final < n {
		t.Fatalf("saw %d events, the log holds %d", len(seen), final)
	}
}

// Filters: one ticket's comments only; one aggregate type; bad filters are
// a 422 that appends nothing.
func TestStreamFilters(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	one, two := ada.open("One"), ada.open("Two")
	ada.comment(one, "on one, before")
	ada.comment(two, "on two, before")
	id := strings.TrimPrefix(one, "/tickets/")
	c := ada.stream("/events/stream?ticket=" + id + "&type=comment_added&type=ticket_closed")
	u := ada.stream("/events/stream?aggregate_type=user")
	ada.comment(two, "on two, live")
	ada.comment(one, "on one, live")
	ada.command(one, one+"/close", nil)
	got := c.until(func(e sseEvent) bool { return e.typ == "ticket_closed" })
	if len(got) != 3 || !strings.Contains(got[0].data, "on one, before") || !strings.Contains(got[1].data, "on one, live") {
		t.Fatalf("ticket %s comments and closing: got %+v", id, got)
	}
	for _, e := range got {
		var ev wireEvent
		json.Unmarshal([]byte(e.data), &ev)
		if ev.AggregateType != "ticket" || ev.AggregateID != id {
			t.Fatalf("filtered stream sent %+v", ev)
		}
	}
	e := u.next()
	var ev wireEvent
	if json.Unmarshal([]byte(e.data), &ev); ev.AggregateType != "user" {
		t.Fatalf("aggregate_type=user sent %+v", ev)
	}
	before := countEvents(t, s.DB)
	for _, q := range []string{"after=-1", "after=x", "type=Bad!", "ticket=0", "aggregate_type=user&ticket=1"} {
		a := ada.do("GET", "/events/stream?"+q, nil, "Accept", "application/json")
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `"error"`) {
			t.Errorf("?%s: got %d %.200s, want 422 JSON", q, a.status, a.body)
		}
	}
	if a := ada.do("GET", "/events/stream", nil, "Last-Event-ID", "nope"); a.status != http.StatusUnprocessableEntity {
		t.Errorf("Last-Event-ID nope: got %d, want 422", a.status)
	}
	if a := ada.get("/events/stream?ticket=999"); a.status != http.StatusNotFound {
		t.Errorf("a ticket that does not exist: got %d, want 404", a.status)
	}
	if got := countEvents(t, s.DB); got != before {
		t.Errorf("bad streams appended %d events", got-before)
	}
}

// Events of a project the person cannot read never reach them, in the
// catch-up or live; a ticket of it is 404; no more than the per-person
// limit of streams are open at once.
func TestStreamHidesProjects(t *testing.T) {
	s := startServer(t, "--streams-per-person", "2")
	ada := newBrowser(t, s.URL)
	ada.register("ada") // the first person: admin
	mia := newBrowser(t, s.URL).from("127.0.0.21")
	mia.register("mia") // a member of main only
	if r := ada.command("/projects", "/projects", url.Values{"slug": {"acme"}, "name": {"Acme rockets"}}); r.status != http.StatusSeeOther {
		t.Fatalf("create acme: %d", r.status)
	}
	secret := ada.post("/tickets", ada.form("/tickets/new?project=acme", "/tickets", url.Values{"title": {"Secret launch"}, "project": {"acme"}})).location
	ada.comment(secret, "countdown at noon")
	public := ada.open("Canteen menu")
	if a := mia.get("/events/stream?ticket=" + strings.TrimPrefix(secret, "/tickets/")); a.status != http.StatusNotFound {
		t.Fatalf("mia streaming the secret ticket: got %d, want 404", a.status)
	}
	c := mia.stream("/events/stream")
	mia.stream("/events/stream?aggregate_type=ticket") // the second: allowed
	if a := mia.get("/events/stream"); a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
		t.Fatalf("a third stream: got %d, want 429 with Retry-After", a.status)
	}
	ada.comment(secret, "launched")
	ada.comment(public, "fish on Friday")
	got := c.until(func(e sseEvent) bool { return strings.Contains(e.data, "fish on Friday") })
	sid := strings.TrimPrefix(secret, "/tickets/")
	sawPublic := false
	for _, e := range got {
		var ev wireEvent
		json.Unmarshal([]byte(e.data), &ev)
		if ev.AggregateType == "ticket" && ev.AggregateID == sid || ev.AggregateType == "project" && ev.AggregateID == "acme" ||
			strings.Contains(e.data, "Secret") || strings.Contains(e.data, "countdown") || strings.Contains(e.data, "launched") {
			t.Fatalf("mia was sent %s %s", e.typ, e.data)
		}
		sawPublic = sawPublic || ev.Type == "ticket_opened" && strings.Contains(e.data, "Canteen")
	}
	if !sawPublic {
		t.Fatalf("mia did not get the public ticket's opening: %+v", got)
	}
	// ada, an admin, sees the project's events.
	all := ada.stream("/events/stream").until(func(e sseEvent) bool { return strings.Contains(e.data, "fish on Friday") })
	n := 0
	for _, e := range all {
		if strings.Contains(e.data, "Secret") || strings.Contains(e.data, "launched") {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("ada saw %d of the secret ticket's events, want its opening and the live comment", n)
	}
}

// A client that stops reading is dropped with a last "close" event naming
// where to resume, while every command still completes: the writer never
// waits on it. Resuming from there gets the rest.
func TestStreamDropsSlowConsumer(t *testing.T) {
	s := startServer(t, "--stream-buffer", "2")
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	tk := ada.open("Big comments")
	// A client with a tiny receive buffer that reads nothing for now.
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	slow := &http.Client{Jar: ada.c.Jar, Transport: &http.Transport{DialContext: dialer.DialContext}}
	c := ada.streamWith(slow, "/events/stream?after=0")
	fields := ada.form(tk, tk+"/comments", nil)
	body := strings.Repeat("x", 9900)
	dropped := false
	for i := 0; i < 2000 && !dropped; i++ {
		fields.Set("command_id", events.NewID())
		fields.Set("body", fmt.Sprintf("%d %s", i, body))
		if a := ada.post(tk+"/comments", fields); a.status != http.StatusSeeOther {
			t.Fatalf("comment %d: got %d while a client is stalled\n%.2000s", i, a.status, a.body)
		}
		dropped = strings.Contains(s.Log.String(), "slow consumer")
	}
	if !dropped {
		t.Fatalf("the stalled client was never dropped")
	}
	h := head(t, ada)
	// Now read: events in order, then the close with where to resume.
	go c.read()
	var last int64
	var closing sseEvent
	for e := range c.events {
		if e.typ == "close" {
			closing = e
			break
		}
		if e.id != last+1 {
			t.Fatalf("got position %d after %d", e.id, last)
		}
		last = e.id
	}
	var v struct {
		Reason      string `json:"reason"`
		ResumeAfter int64  `json:"resume_after"`
	}
	if err := json.Unmarshal([]byte(closing.data), &v); err != nil || v.Reason != "slow consumer" || v.ResumeAfter != last {
		t.Fatalf("close event %q: want reason slow consumer, resume_after %d", closing.data, last)
	}
	if _, ok := <-c.events; ok {
		t.Fatalf("the stream went on after its close event")
	}
	if last >= h {
		t.Fatalf("dropped after the last event (%d of %d)", last, h)
	}
	r := ada.stream("/events/stream", "Last-Event-ID", strconv.FormatInt(v.ResumeAfter, 10))
	for p := v.ResumeAfter + 1; p <= h; p++ {
		if e := r.next(); e.id != p {
			t.Fatalf("resumed: got %d, want %d", e.id, p)
		}
	}
}

// The ticket page in Chromium shows a comment another person made, and
// the new status, without a reload.
func TestLiveTicketPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are slow; run without -short")
	}
	s := startServer(t)
	p := &person{tb: t, ctx: newChromium(t), base: s.URL, shot: screenshotDir(t)}
	p.register("alice")
	p.visit("/tickets/new")
	p.do(chromedp.SendKeys(chromedp.ID("title"), "Lift stuck on the fourth floor"),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	p.waitFor("the ticket", `location.pathname === "/tickets/1"`)
	p.do(chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	bob := newBrowser(t, s.URL).from("127.0.0.61")
	bob.register("bob")
	p.waitFor("the stream open", `!!document.querySelector("#live") && document.querySelector("#live")["htmx-internal-data"] && document.querySelector("#live")["htmx-internal-data"].sseEventSource && document.querySelector("#live")["htmx-internal-data"].sseEventSource.readyState === 1`)
	bob.comment("/tickets/1", "The engineer is on the way.")
	p.waitFor("bob's comment", `document.querySelector("#comments").innerText.includes("The engineer is on the way.")`)
	bob.command("/tickets/1", "/tickets/1/close", nil)
	p.waitFor("the closed status", `document.querySelector("#ticket-main").innerText.toLowerCase().includes("closed")`)
	p.waitFor("no reload", `window.notReloaded === true`)
	p.screenshot("ticket-live")
}

// The live list does not throw away the tickets someone has chosen for a
// bulk change: while any is ticked it stays as it is and says the tickets
// changed, with a link that shows the changes; with none ticked it
// refreshes itself.
func TestLiveListKeepsChosenTickets(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are slow; run without -short")
	}
	s := startServer(t)
	p := &person{tb: t, ctx: newChromium(t), base: s.URL, shot: screenshotDir(t)}
	p.register("alice")
	bob := newBrowser(t, s.URL).from("127.0.0.62")
	bob.register("bob")
	bob.open("Heating is off in room 4")
	p.visit("/tickets")
	p.waitFor("the stream open", `(() => { const d = document.querySelector("[sse-connect]")["htmx-internal-data"]; return !!d && !!d.sseEventSource && d.sseEventSource.readyState === 1 })()`)
	bob.open("Window will not close")
	p.waitFor("the list refreshed", `document.querySelector("#results").innerText.includes("Window will not close")`)
	p.do(chromedp.Click(chromedp.CSS(`input[name=tickets][value="1"]`)))
	bob.open("Projector shows no picture")
	p.waitFor("the note", `!document.getElementById("live-note").hidden`)
	kept, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](`document.querySelector('input[name=tickets][value="1"]').checked && !document.querySelector("#results").innerText.includes("Projector")`))
	if err != nil || !kept {
		t.Fatalf("the list refreshed over a chosen ticket")
	}
	p.screenshot("list-live-kept")
	p.do(chromedp.Click(chromedp.CSS(`#live-note a`)))
	p.waitFor("the changes shown", `document.querySelector("#results").innerText.includes("Projector") && document.getElementById("live-note").hidden`)
}
