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
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"braid/internal/events"
	"braid/internal/web"
	"braid/migrations"
	"braid/static"
)

type done struct {
	N int `json:"n"`
}

func TestVerifyPage(t *testing.T) {
	ctx := context.Background()
	db, err := events.Open(ctx, filepath.Join(t.TempDir(), "braid.db"), migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := events.NewRegistry()
	typ := events.Define[done](reg, "thing_done", 1)
	w, err := events.NewWriter(ctx, db, reg, events.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 30; i++ {
		if _, err := w.Do(ctx, events.Command{Actor: "t", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			return []events.Change{{AggregateType: "thing", AggregateID: "1", Expect: events.Any, Events: []events.Pending{typ.New(done{N: i})}}}, nil
		}}); err != nil {
			t.Fatal(err)
		}
	}
	head := events.Hex(w.Head().Hash)
	env := &web.Env{DB: db, Writer: w, Registry: reg, Assets: static.New(), Log: slog.New(slog.DiscardHandler)}
	anchors := func(ctx context.Context) ([]web.AnchorCheck, error) {
		return []web.AnchorCheck{{ID: 1, Position: 10, Witness: "test", Hash: "ab", OK: true}}, nil
	}
	mon := web.NewMonitor(ctx, db.Read, anchors, nil, time.Hour)
	e := echo.New()
	e.HTTPErrorHandler = env.ErrorHandler
	e.GET("/verify", web.VerifyPage(env, mon))
	srv := httptest.NewServer(e)
	defer srv.Close()

	get := func(accept string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+"/verify", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, body := get("")
	if code != 200 || !strings.Contains(body, "Intact:") || !strings.Contains(body, head) || !strings.Contains(body, "30</strong>") && !strings.Contains(body, "30 events") {
		t.Fatalf("GET /verify: %d, body without the verdict or the full head %s:\n%s", code, head, body)
	}
	if !strings.Contains(body, "not anchored") {
		t.Fatalf("GET /verify does not say the head is not anchored:\n%s", body)
	}
	code, body = get("application/json")
	var got struct {
		Intact  bool              `json:"intact"`
		Events  int64             `json:"events"`
		Head    string            `json:"head"`
		Failure *events.Failure   `json:"failure"`
		Anchors []web.AnchorCheck `json:"anchors"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != 200 {
		t.Fatalf("GET /verify as JSON: %d %v %s", code, err, body)
	}
	if !got.Intact || got.Events != 30 || got.Head != head || got.Failure != nil || len(got.Anchors) != 1 {
		t.Fatalf("GET /verify as JSON: got %+v, want intact, 30 events, head %s, one anchor", got, head)
	}

	// A failed anchor makes the page say broken, at the anchor's position.
	bad := web.NewMonitor(ctx, db.Read, func(ctx context.Context) ([]web.AnchorCheck, error) {
		return []web.AnchorCheck{{ID: 2, Position: 12, Witness: "test", Problem: "anchor #2 (witness test) expected hash aa, found bb"}}, nil
	}, nil, time.Hour)
	e.GET("/verify-bad", web.VerifyPage(env, bad))
	res, err := http.Get(srv.URL + "/verify-bad")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), "The braid is broken at position 12<") || !strings.Contains(string(b), "anchor #2") {
		t.Fatalf("GET with a failed anchor: want broken at 12, got:\n%s", b)
	}
}
