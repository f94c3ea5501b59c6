package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"braid/internal/auth"
	"braid/internal/events"
	"braid/internal/metrics"
	"braid/internal/replica"
	"braid/internal/web"
	"braid/static"
)

// replicaFlags are serve's replication flags (docs/operations.md).
type replicaFlags struct {
	replicate *string
	follow    *string
	primary   *string
	every     *time.Duration
}

func addReplicaFlags(fs *flag.FlagSet, getenv func(string) string) replicaFlags {
	return replicaFlags{
		replicate: fs.String("replicate", getenv("BRAID_REPLICATE"), "replicate the database continuously to this Litestream replica: s3://BUCKET/PATH?endpoint=…&region=… (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or file:///DIR (env BRAID_REPLICATE)"),
		follow:    fs.String("follow", "", "serve a read-only copy of this replica (a URL as for --replicate), restored into --db (which must not exist) and kept up to date"),
		primary:   fs.String("primary-url", "", "with --follow: the primary's address, linked from every page and from the answer to a write"),
		every:     fs.Duration("follow-every", time.Second, "with --follow: how often to look for new changes in the replica"),
	}
}

// check refuses contradictory flags.
func (rf replicaFlags) check() error {
	if *rf.follow != "" && *rf.replicate != "" {
		return fail(exitFailed, "--follow and --replicate: a follower only reads; replicate from the primary")
	}
	for _, f := range []struct{ name, url string }{{"--replicate", *rf.replicate}, {"--follow", *rf.follow}} {
		if f.url != "" && !strings.HasPrefix(f.url, "file:///") && !strings.HasPrefix(f.url, "s3://") {
			return fail(exitFailed, "%s %q: want file:///path or s3://bucket/path?endpoint=…", f.name, redactURL(f.url))
		}
	}
	if *rf.primary != "" {
		u, err := url.Parse(*rf.primary)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fail(exitFailed, "--primary-url %q: want an http or https URL", *rf.primary)
		}
		if *rf.follow == "" {
			return fail(exitFailed, "--primary-url needs --follow")
		}
	}
	if *rf.every <= 0 {
		return fail(exitFailed, "--follow-every %s: want a positive interval", *rf.every)
	}
	return nil
}

// startReplication starts Litestream on the open database when
// --replicate is set; nil otherwise.
func (rf replicaFlags) startReplication(ctx context.Context, a *app, log *slog.Logger) (*replica.Replicator, error) {
	if *rf.replicate == "" {
		return nil, nil
	}
	head := func(context.Context) (int64, error) { return a.writer.Head().Position, nil }
	r, err := replica.Start(ctx, a.db.Path, *rf.replicate, head, log, replica.Options{})
	if err != nil {
		return nil, fail(exitFailed, "--replicate: %s", errMessage(err))
	}
	log.Info("replicating", slog.String("to", redactURL(*rf.replicate)))
	return r, nil
}

func redactURL(u string) string {
	if p, err := url.Parse(u); err == nil {
		p.RawQuery, p.User = "", nil
		return p.String()
	}
	return "(replica)"
}

// serveFollower serves a read-only copy of a replica: no migrations, no
// writer, every write answered 503 with a link to the primary.
func serveFollower(ctx context.Context, e env, rf replicaFlags, of opsFlags, dbPath, addr string, secure bool, mode auth.RegistrationMode, ip echo.IPExtractor) error {
	if *of.exportEvery > 0 {
		return fail(exitFailed, "--export-every with --follow: a follower records nothing; schedule exports on the primary")
	}
	log, err := e.logger(slog.LevelInfo)
	if err != nil {
		return err
	}
	fl, err := replica.Follow(ctx, *rf.follow, dbPath, *rf.every, log)
	if err != nil {
		return fail(exitFailed, "--follow: %s", errMessage(err))
	}
	defer fl.Close()
	db, err := events.OpenFollower(ctx, dbPath)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	defer db.Close()
	db.Aux = db.Read // sessions are read from the copy; a write fails instead of reaching it
	reg, t := registry()
	a := &app{db: db, reg: reg, types: t, log: log}
	w := &web.Env{DB: db, Registry: reg, Sessions: auth.NewSessions(db, secure), Assets: static.New(), Log: log,
		Replica: &web.Replica{Status: fl.Status, Following: true, Primary: *rf.primary}}
	mon := web.NewMonitor(ctx, db.Read, anchorFunc(db, nil), log, 5*time.Second)
	w.Verdict = mon.Verdict
	w.IsAdmin = func(ctx context.Context, user string) (bool, error) { return auth.IsAdmin(ctx, db.Read, user) }
	// The same metrics as a primary's where they apply: the head and the
	// replication position are the copy's, the lag how long since it last
	// held everything the replica held (as /healthz says).
	m := metrics.New()
	m.SetReplication(fl)
	m.Watch(metrics.Gauges{
		Head:     func() int64 { p, _, _ := fl.Status(); return p },
		Sessions: func() (int, error) { return auth.ActiveSessions(ctx, db.Read, time.Now()) },
	})
	mon.OnRun = func(r web.VerifyRun) {
		if r.Err == nil {
			m.Verified(r.Took, r.Full)
		}
	}
	if *of.metricsAddr != "" {
		stopM, err := serveMetrics(*of.metricsAddr, m, log)
		if err != nil {
			return err
		}
		defer stopM()
	}
	srv := newServer(w, a, mon, secure, mode, ip, m.Middleware(*of.metricsToken))
	srv.Pre(readOnly(*rf.primary))

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fail(exitFailed, "listen on %s: %v", addr, err)
	}
	u := "http://" + ln.Addr().String()
	fmt.Fprintf(e.stdout, "Braid is following %s into %s on %s\n", redactURL(*rf.follow), dbPath, u)
	log.Info("following", slog.String("url", u), slog.String("db", dbPath))
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fail(exitFailed, "serve: %v", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("shutdown", slog.Any("err", err))
	}
	return nil
}

// readOnly answers every request but GET, HEAD and OPTIONS with 503 and
// where to go instead.
func readOnly(primary string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			switch c.Request().Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
				return next(c)
			}
			msg := "this is a read-only copy of Braid: make changes on the primary"
			if primary != "" {
				msg += " at " + primary
				c.Response().Header().Set("Link", "<"+primary+">; rel=\"primary\"")
			}
			if web.WantsJSON(c) {
				return c.JSON(http.StatusServiceUnavailable, map[string]any{"error": map[string]any{"code": "read_only", "message": msg, "primary": primary}})
			}
			body := "<!doctype html><title>Read-only copy</title><p>This is a read-only copy of Braid. Make changes on the primary"
			if primary != "" {
				body += `: <a href="` + html.EscapeString(primary) + `">` + html.EscapeString(primary) + `</a>`
			}
			return c.HTML(http.StatusServiceUnavailable, body+".</p>\n")
		}
	}
}

// restoreCmd is `web restore URL --db NEW [--at TIME]`: restore, verify,
// and only then call it restored.
func restoreCmd(ctx context.Context, e env, args []string) error {
	const synopsis = "restore URL --db NEW [--at TIME] [--tsa-roots FILE] [--rpc-url URL]"
	if len(args) == 0 || isFlag(args[0]) {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fs, _ := newFlags(e, "restore", synopsis)
			return parse(fs, args)
		}
		return fail(exitFailed, "want the replica's URL first: web %s", synopsis)
	}
	src, args := args[0], args[1:]
	fs, dbPath := newFlags(e, "restore", synopsis)
	at := fs.String("at", "", "restore the state at this time (RFC 3339, e.g. 2026-11-23T18:00:00Z; to about a second) instead of the latest")
	wf := addWitnessFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	var when time.Time
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fail(exitFailed, "--at %q: want an RFC 3339 time such as 2026-11-23T18:00:00Z", *at)
		}
		when = t
	}
	out := *dbPath
	staging := out + ".unverified"
	broken := out + ".broken"
	for _, p := range []string{out, staging, broken} {
		if _, err := os.Lstat(p); err == nil {
			return fail(exitFailed, "%s already exists: restore into a new path", p)
		}
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := replica.Restore(ctx, src, staging, when, log); err != nil {
		os.Remove(staging)
		return fail(exitFailed, "%s", errMessage(err))
	}
	rep, unavailable, err := verifyFile(ctx, staging, wf)
	if err != nil {
		os.Remove(staging)
		return err
	}
	if !rep.Intact {
		if err := os.Rename(staging, broken); err != nil {
			return fail(exitFailed, "%v", err)
		}
		return &exitError{code: exitBroken, err: fmt.Errorf("refused: the replica's log is %s; not restored (the copy is kept for inspection as %s)", verdict(rep), broken)}
	}
	if err := os.Rename(staging, out); err != nil {
		return fail(exitFailed, "%v", err)
	}
	fmt.Fprintf(e.stdout, "restored %s from %s: %s\n", out, redactURL(src), verdict(rep))
	if unavailable {
		return fail(exitFailed, "restored, the braid is intact, but a witness could not be reached to check its receipts")
	}
	return nil
}

// verifyFile runs verify's checks (the braid, the tree, the anchors) on
// the database at path.
func verifyFile(ctx context.Context, path string, wf *witnessFlags) (web.VerifyReport, bool, error) {
	db, err := openReadOnly(ctx, path)
	if err != nil {
		return web.VerifyReport{}, false, err
	}
	defer db.Close()
	r, err := events.Verify(ctx, db.Read)
	if err != nil {
		return web.VerifyReport{}, false, fail(exitFailed, "%v", err)
	}
	checkers, closeC, err := wf.checkers(ctx)
	if err != nil {
		return web.VerifyReport{}, false, err
	}
	defer closeC()
	anchors, unavailable, err := checkAnchors(ctx, db, checkers)
	if err != nil {
		return web.VerifyReport{}, false, fail(exitFailed, "%v", err)
	}
	rep := web.NewVerifyReport(r, anchors)
	if err := treeCheck(ctx, db, r, &rep); err != nil {
		return web.VerifyReport{}, false, fail(exitFailed, "%v", err)
	}
	return rep, unavailable, nil
}

// replicaLine is /healthz's second line: role, position, lag, error.
func replicaLine(s web.ReplicaStatus) string {
	l := fmt.Sprintf("%s position=%d lag=%.3fs", s.Role, s.Position, s.LagSeconds)
	if s.Error != "" {
		l += " error=" + fmt.Sprintf("%q", s.Error)
	}
	return l
}
