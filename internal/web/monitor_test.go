package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"braid/internal/events"
	"braid/internal/web"
	"braid/migrations"
	"braid/static"
)

// monitorFixture is a real log with a writer, a monitor and /verify served.
type monitorFixture struct {
	t          *testing.T
	db         *events.DB
	w          *events.Writer
	typ        events.Type[done]
	mon        *web.Monitor
	url        string
	block      atomic.Bool // the anchor check waits for release while set
	release    chan struct{}
	anchorRuns atomic.Int64
}

func newMonitorFixture(t *testing.T, n int) *monitorFixture {
	t.Helper()
	ctx := context.Background()
	db, err := events.Open(ctx, filepath.Join(t.TempDir(), "braid.db"), migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := events.NewRegistry()
	f := &monitorFixture{t: t, db: db, typ: events.Define[done](reg, "thing_done", 1), release: make(chan struct{})}
	f.w, err = events.NewWriter(ctx, db, reg, events.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.w.Close() })
	f.append(n)
	env := &web.Env{DB: db, Writer: f.w, Registry: reg, Assets: static.New(), Log: slog.New(slog.DiscardHandler)}
	f.mon = web.NewMonitor(ctx, db.Read, func(ctx context.Context) ([]web.AnchorCheck, error) {
		f.anchorRuns.Add(1)
		if f.block.Load() {
			<-f.release
		}
		return nil, nil
	}, nil, time.Hour)
	f.mon.FullEvery = time.Hour
	env.Verdict = f.mon.Verdict
	e := echo.New()
	e.HTTPErrorHandler = env.ErrorHandler
	e.GET("/verify", web.VerifyPage(env, f.mon))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *monitorFixture) append(n int) {
	f.t.Helper()
	for i := 0; i < n; i++ {
		if _, err := f.w.Do(context.Background(), events.Command{Actor: "t", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			return []events.Change{{AggregateType: "thing", AggregateID: "1", Expect: events.Any, Events: []events.Pending{f.typ.New(done{N: i})}}}, nil
		}}); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *monitorFixture) get(accept string) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.url+"/verify", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

type verifyJSON struct {
	Intact          bool   `json:"intact"`
	Events          int64  `json:"events"`
	Head            string `json:"head"`
	CheckedPosition int64  `json:"checked_position"`
	CheckedAt       string `json:"checked_at"`
	HeadPosition    int64  `json:"head_position"`
	Current         bool   `json:"current"`
}

func (f *monitorFixture) json() verifyJSON {
	f.t.Helper()
	code, body := f.get("application/json")
	var v verifyJSON
	if err := json.Unmarshal([]byte(body), &v); err != nil || code != 200 {
		f.t.Fatalf("GET /verify as JSON: %d %v %s", code, err, body)
	}
	return v
}

// TestVerifyMonitorIncremental: visitors cannot make the monitor check
// anything while the log stays as it was, and after appends a run reads
// only the new events.
func TestVerifyMonitorIncremental(t *testing.T) {
	f := newMonitorFixture(t, 30)
	if code, body := f.get(""); code != 200 || !strings.Contains(body, "Intact:") || !strings.Contains(body, "30 events") {
		t.Fatalf("first GET /verify: %d\n%s", code, body)
	}
	run, ok := f.mon.Latest()
	if !ok || !run.Full || run.From != 1 || run.Read != 30 || f.mon.Runs() != 1 {
		t.Fatalf("first run: %+v, runs %d; want a full run from 1 reading 30 events", run, f.mon.Runs())
	}
	for i := 0; i < 50; i++ {
		accept := ""
		if i%2 == 1 {
			accept = "application/json"
		}
		if code, _ := f.get(accept); code != 200 {
			t.Fatalf("GET /verify #%d: %d", i, code)
		}
	}
	if n := f.mon.Runs(); n != 1 {
		t.Fatalf("50 requests with no new events started %d runs; want none after the first", n-1)
	}

	f.append(7)
	v := f.json()
	run, _ = f.mon.Latest()
	if f.mon.Runs() != 2 || run.Full || run.From != 31 || run.Read != 7 {
		t.Fatalf("after 7 appends: run %+v, runs %d; want one more run reading positions 31-37 only", run, f.mon.Runs())
	}
	if !v.Intact || v.Events != 37 || v.CheckedPosition != 37 || v.HeadPosition != 37 || !v.Current || v.Head != events.Hex(f.w.Head().Hash) {
		t.Fatalf("JSON after appends: %+v; want intact, 37 events checked, current, head %s", v, events.Hex(f.w.Head().Hash))
	}
	if n := f.anchorRuns.Load(); n != 1 {
		t.Fatalf("anchors checked %d times; want once (they did not change)", n)
	}
	for i := 0; i < 10; i++ {
		f.get("")
	}
	if n := f.mon.Runs(); n != 2 {
		t.Fatalf("requests after the catch-up started %d more runs; want none", n-2)
	}
}

// TestVerifyStaleResultSaysSo: while a newer check runs, /verify shows the
// older verdict with how far it reaches, and the JSON says it is not
// current.
func TestVerifyStaleResultSaysSo(t *testing.T) {
	f := newMonitorFixture(t, 30)
	if v := f.json(); !v.Current || v.CheckedPosition != 30 || v.HeadPosition != 30 {
		t.Fatalf("first check: %+v; want current at 30", v)
	}
	// A new anchor makes the next run check the anchors, which hang.
	f.block.Store(true)
	h := f.w.Head().Hash
	if _, err := f.db.Aux.Exec(`INSERT INTO anchors (position, hash, witness, receipt, anchored_at) VALUES (30, ?, 'test', x'', '2026-11-22T10:00:00Z')`, h[:]); err != nil {
		t.Fatal(err)
	}
	f.append(3)
	code, body := f.get("")
	for _, want := range []string{"Checked up to position 30", "ago", "the log now has 33 events", "a newer check is running", "Intact up to position 30:"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("GET /verify during a run: %d, want %q in:\n%s", code, want, body)
		}
	}
	v := f.json()
	if v.Current || v.CheckedPosition != 30 || v.HeadPosition != 33 || v.CheckedAt == "" || !v.Intact {
		t.Fatalf("JSON during a run: %+v; want not current, checked 30, head 33", v)
	}
	close(f.release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v = f.json(); v.Current {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("JSON never current again: %+v", v)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v.CheckedPosition != 33 || v.HeadPosition != 33 {
		t.Fatalf("JSON after the run: %+v; want checked 33 of 33", v)
	}
	if _, body := f.get(""); strings.Contains(body, "Checked up to position") || !strings.Contains(body, "Intact:") {
		t.Fatalf("GET /verify after the run still says it is stale:\n%s", body)
	}
}
