package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"braid/internal/auth"
	"braid/internal/metrics"
	"braid/internal/ops"
	"braid/internal/web"
)

// opsFlags are serve's flags for metrics and scheduled exports.
type opsFlags struct {
	metricsAddr  *string
	metricsToken *string
	exportEvery  *time.Duration
	exportDir    *string
	exportKeep   *int
}

func addOpsFlags(fs *flag.FlagSet, e env) opsFlags {
	return opsFlags{
		metricsAddr:  fs.String("metrics-addr", e.getenv("BRAID_METRICS_ADDR"), "serve /metrics (Prometheus) on this separate HOST:PORT, nothing else on it (env BRAID_METRICS_ADDR; default: not served)"),
		metricsToken: fs.String("metrics-token", e.getenv("BRAID_METRICS_TOKEN"), "also serve /metrics on the main address to requests with Authorization: Bearer TOKEN (env BRAID_METRICS_TOKEN; at least 16 characters)"),
		exportEvery:  fs.Duration("export-every", 0, "write a verified export into --export-dir this often, e.g. 24h (0: never; the default)"),
		exportDir:    fs.String("export-dir", "", "directory for scheduled exports, named braid-<UTC time>-<position>.jsonl"),
		exportKeep:   fs.Int("export-keep", 7, "how many scheduled exports to keep (the newest)"),
	}
}

func (f opsFlags) check() error {
	if t := *f.metricsToken; t != "" && len(t) < 16 {
		return fail(exitFailed, "--metrics-token: want at least 16 characters")
	}
	if *f.exportEvery < 0 {
		return fail(exitFailed, "--export-every %s: want a positive interval, e.g. 24h (0: never)", *f.exportEvery)
	}
	if *f.exportEvery > 0 && *f.exportDir == "" {
		return fail(exitFailed, "--export-every needs --export-dir DIR")
	}
	if *f.exportEvery == 0 && *f.exportDir != "" {
		return fail(exitFailed, "--export-dir needs --export-every, e.g. --export-every 24h")
	}
	if *f.exportKeep < 1 || *f.exportKeep > 10000 {
		return fail(exitFailed, "--export-keep %d: want a number from 1 to 10000", *f.exportKeep)
	}
	return nil
}

// watch points the metrics at what they read at scrape time and has the
// monitor report its runs (to the metrics, and to ops_runs for doctor).
func watch(ctx context.Context, m *metrics.Metrics, a *app, mon *web.Monitor, log *slog.Logger) {
	m.Watch(metrics.Gauges{
		Head:  func() int64 { return a.writer.Head().Position },
		Queue: a.writer.Queued,
		Sessions: func() (int, error) {
			return auth.ActiveSessions(ctx, a.db.Read, time.Now())
		},
	})
	mon.OnRun = func(r web.VerifyRun) {
		if r.Err != nil {
			return
		}
		m.Verified(r.Took, r.Full)
		run := ops.Run{Kind: ops.KindVerify, At: r.At, OK: r.Report.Intact, Position: r.Checked}
		if f := r.Report.Failure; f != nil {
			run.Detail = fmt.Sprintf("broken at position %d: %s", f.Position, f.Reason)
		}
		if err := ops.Record(ctx, a.db.Aux, run); err != nil && ctx.Err() == nil {
			log.Warn("could not record the verify run", slog.Any("err", err))
		}
	}
}

// startOps starts the metrics listener and the export schedule; the
// function returned stops them.
func (f opsFlags) start(ctx context.Context, m *metrics.Metrics, a *app, log *slog.Logger) (func(), error) {
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if addr := *f.metricsAddr; addr != "" {
		stopM, err := serveMetrics(addr, m, log)
		if err != nil {
			return stop, err
		}
		stops = append(stops, stopM)
	}
	if *f.exportEvery > 0 {
		x := &ops.Exporter{Read: a.db.Read, Aux: a.db.Aux, Dir: *f.exportDir, Every: *f.exportEvery, Keep: *f.exportKeep,
			Log: log, Done: m.Exported}
		xctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); x.Run(xctx) }()
		stops = append(stops, func() { cancel(); <-done })
		log.Info("exporting on a schedule", slog.String("dir", *f.exportDir), slog.Duration("every", *f.exportEvery), slog.Int("keep", *f.exportKeep))
	}
	return stop, nil
}

// serveMetrics serves /metrics, and nothing else, on addr.
func serveMetrics(addr string, m *metrics.Metrics, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fail(exitFailed, "--metrics-addr %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", slog.Any("err", err))
		}
	}()
	log.Info("serving metrics", slog.String("url", "http://"+ln.Addr().String()+"/metrics"))
	return func() { hs.Close() }, nil
}
