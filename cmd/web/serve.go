package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"braid/internal/anchor"
	"braid/internal/auth"
	"braid/internal/tickets"
	"braid/internal/web"
	"braid/static"
)

func serve(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "serve", "serve [--db PATH] [--addr HOST:PORT] [--secure-cookies]")
	addr := fs.String("addr", defaultAddr(e.getenv), "address to listen on (env BRAID_ADDR; else 0.0.0.0:$PORT; else 127.0.0.1:8080)")
	secure := fs.Bool("secure-cookies", e.getenv("BRAID_SECURE_COOKIES") == "1", "mark cookies Secure, for deployments behind TLS (env BRAID_SECURE_COOKIES=1)")
	every := fs.Duration("anchor-every", 0, "anchor the head with --witness this often, e.g. 1h (0: never; the default)")
	wf := addWitnessFlags(fs)
	registration := fs.String("registration", cmp.Or(e.getenv("BRAID_REGISTRATION"), "open"), "who may register: open or closed (env BRAID_REGISTRATION)")
	if err := parse(fs, args); err != nil {
		return err
	}
	mode, err := registrationMode(*registration)
	if err != nil {
		return err
	}
	if *every < 0 {
		return fail(exitFailed, "--anchor-every %s: want a positive interval, e.g. 1h (0: never)", *every)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	var job *anchor.Job
	if *every > 0 || *wf.witness != "" {
		if *every <= 0 {
			return fail(exitFailed, "--witness needs --anchor-every, e.g. --anchor-every 1h")
		}
		w, closeW, err := wf.anchoring(ctx)
		if err != nil {
			return err
		}
		defer closeW()
		job = &anchor.Job{Witness: w, Interval: *every, Log: log}
	}

	unlock, err := lockDB(*dbPath)
	if err != nil {
		return err
	}
	defer unlock()
	a, err := openApp(ctx, *dbPath, log)
	if err != nil {
		return err
	}
	defer a.Close()

	sessions := auth.NewSessions(a.db, *secure)

	w := &web.Env{DB: a.db, Writer: a.writer, Registry: a.reg, Sessions: sessions, Assets: static.New(), Log: log}
	checkers, closeC, err := wf.checkers(ctx)
	if err != nil {
		return err
	}
	defer closeC()
	mon := web.NewMonitor(ctx, a.db.Read, anchorFunc(a.db, checkers), log, 5*time.Second)
	w.Verdict = mon.Verdict // every page says when the braid is broken
	srv := newServer(w, a, mon, *secure, mode)

	if job != nil {
		// The job reads the head from the writer's memory and records
		// receipts on the auxiliary connection: a slow or dead witness never
		// holds up a command.
		job.Head, job.DB = a.writer.Head, a.db.Aux
		jctx, stopJob := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); job.Run(jctx) }()
		defer func() { stopJob(); <-done }()
		log.Info("anchoring on a schedule", slog.String("witness", job.Witness.Name()), slog.Duration("every", *every))
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(exitFailed, "listen on %s: %v", *addr, err)
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(e.stdout, "Braid is serving %s on %s\n", *dbPath, url)
	log.Info("listening", slog.String("url", url), slog.String("db", *dbPath))

	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fail(exitFailed, "serve: %v", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests, then draining the writer")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("shutdown", slog.Any("err", err))
	}
	return nil
}

// registrationMode reads --registration: open or closed. Invitations
// come later; asking for them now stops the start, rather than running a
// site more open or more closed than meant.
func registrationMode(s string) (auth.RegistrationMode, error) {
	switch m := auth.RegistrationMode(s); m {
	case auth.RegistrationOpen, auth.RegistrationClosed:
		return m, nil
	case "invite":
		return "", fail(exitFailed, "--registration invite is not available yet: use open or closed")
	}
	return "", fail(exitFailed, "--registration %q: use open or closed", s)
}

func defaultAddr(getenv func(string) string) string {
	if a := getenv("BRAID_ADDR"); a != "" {
		return a
	}
	if p := getenv("PORT"); p != "" {
		return "0.0.0.0:" + p
	}
	return "127.0.0.1:8080"
}

// newServer builds the echo server with its middleware and every route.
func newServer(w *web.Env, a *app, mon *web.Monitor, secure bool, registration auth.RegistrationMode) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// The client's address (for rate limits and logs) comes from
	// X-Forwarded-For only when a proxy on a private network or loopback
	// (as on Fly.io) sent it; anyone else's header is ignored.
	e.IPExtractor = echo.ExtractIPFromXFFHeader(echo.TrustLoopback(true), echo.TrustPrivateNet(true), echo.TrustLinkLocal(true))
	e.HTTPErrorHandler = w.ErrorHandler
	people := &auth.Handlers{Env: w, Service: &auth.Service{DB: a.db, Writer: a.writer, Types: a.types.users},
		Limiter: auth.NewLimiter(auth.DefaultLimiterCap), Registration: registration}
	tix := &tickets.Handlers{Env: w, Service: tickets.NewService(a.writer, a.reg, a.types.tickets)}
	routes(e, w, people, tix, mon, secure)
	return e
}
