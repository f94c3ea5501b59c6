package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"braid/internal/access"
	"braid/internal/anchor"
	"braid/internal/auth"
	"braid/internal/erase"
	"braid/internal/fields"
	"braid/internal/hooks"
	"braid/internal/metrics"
	"braid/internal/notify"
	"braid/internal/search"
	"braid/internal/tickets"
	"braid/internal/tlog"
	"braid/internal/web"
	"braid/static"
	"braid/templates"
)

func serve(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "serve", "serve [--db PATH] [--addr HOST:PORT] [--secure-cookies] [--trusted-proxy CIDR] [--registration open|invite|closed] [--log-key FILE] [--origin ORIGIN] [--smtp-url URL --mail-from ADDR [--mail-every 10m] [--base-url URL]] [--metrics-addr HOST:PORT] [--metrics-token TOKEN] [--export-every 24h --export-dir DIR [--export-keep N]] [--replicate URL | --follow URL [--primary-url URL]] [--log-format text|json] [--webhook-allow-private]")
	addr := fs.String("addr", defaultAddr(e.getenv), "address to listen on (env BRAID_ADDR; else 0.0.0.0:$PORT; else 127.0.0.1:8080)")
	secure := fs.Bool("secure-cookies", e.getenv("BRAID_SECURE_COOKIES") == "1", "mark cookies Secure, for deployments behind TLS (env BRAID_SECURE_COOKIES=1)")
	every := fs.Duration("anchor-every", 0, "anchor the head with --witness this often, e.g. 1h (0: never; the default)")
	wf := addWitnessFlags(fs)
	deepEvery := fs.Duration("deep-verify-every", 0, "rebuild the projections from the log in scratch files and compare them with the live tables this often, e.g. 24h; /verify shows the last result (0: never; the default; `web verify --deep` runs one by hand)")
	registration := fs.String("registration", e.getenv("BRAID_REGISTRATION"), "who may register, for this process only: open, invite or closed (env BRAID_REGISTRATION; default: the mode the log holds, set on the admin page or by web admin set-registration; invite once the site has its first person)")
	mf := addMailFlags(fs, e.getenv)
	var proxies cidrList
	kf := addLogKeyFlags(fs, e, dbPath)
	of := addOpsFlags(fs, e)
	rf := addReplicaFlags(fs, e.getenv)
	hf := addWebhookFlags(fs)
	sf := addStreamFlags(fs)
	af := addAttachFlags(fs, e.getenv)
	fs.Var(&proxies, "trusted-proxy", "CIDR of a reverse proxy whose X-Forwarded-For is believed; repeat or separate with commas (env BRAID_TRUSTED_PROXIES; default none: the peer's address)")
	if err := parse(fs, args); err != nil {
		return err
	}
	mode, err := registrationMode(*registration)
	if err != nil {
		return err
	}
	if err := of.check(); err != nil {
		return err
	}
	mailer, err := mf.mailer()
	if err != nil {
		return err
	}
	if *every < 0 {
		return fail(exitFailed, "--anchor-every %s: want a positive interval, e.g. 1h (0: never)", *every)
	}
	if env := e.getenv("BRAID_TRUSTED_PROXIES"); env != "" && len(proxies) == 0 {
		if err := proxies.Set(env); err != nil {
			return fail(exitFailed, "BRAID_TRUSTED_PROXIES: %v", err)
		}
	}
	if err := rf.check(); err != nil {
		return err
	}
	if err := sf.check(); err != nil {
		return err
	}
	up, err := af.check()
	if err != nil {
		return err
	}
	if *rf.follow != "" {
		return serveFollower(ctx, e, rf, of, *dbPath, *addr, *secure, mode, clientIP(proxies, e.getenv("FLY_APP_NAME") != ""))
	}
	log, err := e.logger(slog.LevelInfo)
	if err != nil {
		return err
	}
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
	key, err := kf.loadOrCreate(log)
	if err != nil {
		return err
	}
	m := metrics.New()
	a, err := openApp(ctx, *dbPath, log, m)
	if err != nil {
		return err
	}
	defer a.Close()
	sf.apply(a.stream)
	rep, err := rf.startReplication(ctx, a, log)
	if err != nil {
		return err
	}
	if rep != nil {
		defer rep.Close(context.Background()) // ships what is left, before the database closes
		m.SetReplication(rep)
	}
	// A mirror (web mirror) serves the source's checkpoints, read-only.
	mir, err := mirrorOf(ctx, a.db)
	if err != nil {
		return err
	}
	transparency := &web.Transparency{Origin: key.Origin, VKey: key.VKey}
	if mir != nil {
		transparency = mir.transparency()
	} else {
		// Checkpoints are signed off the writer's goroutine and kept through
		// it; the signer stops before the writer closes.
		stopSigner, err := startSigner(ctx, a, key, log)
		if err != nil {
			return err
		}
		defer stopSigner()
	}
	if *deepEvery > 0 {
		dctx, stopDeep := context.WithCancel(ctx)
		deepDone := make(chan struct{})
		go func() { defer close(deepDone); runDeepVerify(dctx, a, *deepEvery, log) }()
		defer func() { stopDeep(); <-deepDone }()
	}

	sessions := auth.NewSessions(a.db, *secure)

	w := &web.Env{DB: a.db, Writer: a.writer, Registry: a.reg, Sessions: sessions, Assets: static.New(), Log: log,
		Transparency: transparency}
	checkers, closeC, err := wf.checkers(ctx)
	if err != nil {
		return err
	}
	defer closeC()
	if err := bindWitnesses(checkers, a.db, key.VKey); err != nil {
		return err
	}
	mon := web.NewMonitor(ctx, a.db.Read, anchorFunc(a.db, checkers), log, 5*time.Second)
	mon.Tree = func(ctx context.Context, from tlog.Head) (tlog.SinceCheck, error) {
		return tlog.VerifySince(ctx, a.db.Read, from)
	}
	w.Verdict = mon.Verdict // every page says when the braid is broken
	w.Unread = func(ctx context.Context, user string) (int, error) { return notify.Unread(ctx, a.db.Read, user) }
	w.Private = notify.Private
	w.Readable, w.ReadableEvent = readable(a.db.Read)
	if rep != nil {
		w.Replica = &web.Replica{Status: rep.Status}
	}
	w.IsAdmin = func(ctx context.Context, user string) (bool, error) { return auth.IsAdmin(ctx, a.db.Read, user) }
	a.mailOn = mailer != nil
	a.webhookPrivate = *hf.allowPrivate
	watch(ctx, m, a, mon, log)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(exitFailed, "listen on %s: %v", *addr, err)
	}
	url := "http://" + ln.Addr().String()
	a.passkeys = relyingParty(*mf.baseURL, ln.Addr(), log)
	w.MaxAttachment, w.AttachmentTypes = up.max, up.types
	srv := newServer(w, a, mon, *secure, mode, clientIP(proxies, e.getenv("FLY_APP_NAME") != ""), m.Middleware(*of.metricsToken))
	if mir != nil {
		mir.serve(w, srv)
	}

	if job != nil {
		// The job reads the head from the writer's memory and records
		// receipts on the auxiliary connection: a slow or dead witness never
		// holds up a command.
		job.Head, job.DB = a.writer.Head, a.db.Aux
		bindAnchoring(job.Witness, a.db)
		jctx, stopJob := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); job.Run(jctx) }()
		defer func() { stopJob(); <-done }()
		log.Info("anchoring on a schedule", slog.String("witness", job.Witness.Name()), slog.Duration("every", *every))
	}

	fmt.Fprintf(e.stdout, "Braid is serving %s on %s\n", *dbPath, url)
	log.Info("listening", slog.String("url", url), slog.String("db", *dbPath))

	stopOps, err := of.start(ctx, m, a, log)
	defer stopOps()
	if err != nil {
		return err
	}

	if mir == nil { // a mirror's copy of the log sends no webhooks
		stopHooks := hf.start(ctx, a, log)
		defer stopHooks()
	}

	if mailer != nil {
		stopMail := mf.start(ctx, mailer, a, url, log)
		defer stopMail()
	}

	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
	hs.RegisterOnShutdown(a.stream.Hub.Close) // live streams end, saying so
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

// registrationMode reads --registration: open, invite or closed, or ""
// for the mode the log holds. It overrides the log for this process only
// (demos and tests) and writes nothing.
func registrationMode(s string) (auth.RegistrationMode, error) {
	if s == "" {
		return "", nil
	}
	m, err := auth.ParseMode(s)
	if err != nil {
		return "", fail(exitFailed, "--registration %q: use open, invite or closed", s)
	}
	return m, nil
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
// pre run before everything else (metrics, which must see final statuses).
func newServer(w *web.Env, a *app, mon *web.Monitor, secure bool, registration auth.RegistrationMode, ip echo.IPExtractor, pre ...echo.MiddlewareFunc) *echo.Echo {
	e := echo.New()
	e.Pre(pre...)
	e.HideBanner, e.HidePort = true, true
	// The client's address, for rate limits: see clientIP. Without an
	// extractor echo would believe X-Forwarded-For from anyone.
	e.IPExtractor = ip
	e.HTTPErrorHandler = w.ErrorHandler
	w.Names = func(ctx context.Context, ids []string) (map[string]templates.Person, error) {
		return auth.Names(ctx, a.db.Read, ids)
	}
	people := &auth.Handlers{Env: w, Service: &auth.Service{DB: a.db, Writer: a.writer, Types: a.types.users, Now: time.Now, Override: registration, Projects: a.types.access},
		Limiter: auth.NewLimiter(auth.DefaultLimiterCap), Registration: registration, Describe: tickets.Describe,
		Passkeys: &auth.Passkeys{RP: a.passkeys, DB: a.db, Writer: a.writer, Types: a.types.users, Now: time.Now}}
	people.Claim = a.importer().Claim // the admin page's claim form (docs/import.md)
	tix := &tickets.Handlers{Env: w, Service: tickets.NewService(a.writer, a.reg, a.types.tickets),
		Watching: func(ctx context.Context, ticket int64, user string) (bool, error) {
			return notify.Watching(ctx, a.db.Read, ticket, user)
		}, Search: search.Searcher{}}
	inbox := &notify.Handlers{Env: w, Service: &notify.Service{Writer: a.writer, Types: a.types.notify}, MailOn: a.mailOn}
	projects := &access.Handlers{Env: w, Service: &access.Service{Writer: a.writer, Types: a.types.access},
		Lookup: auth.IDByUsername, Describe: tickets.Describe, Invite: people.Service.InviteToProject}
	webhooks := &hooks.Handlers{Env: w, Service: &hooks.Service{Writer: a.writer, Registry: a.reg, Types: a.types.hooks, Check: hooks.Checker(a.webhookPrivate)}}
	if a.stream != nil {
		a.stream.Env, w.Stream = w, a.stream.Stream
	}
	erasing := &eraseHandlers{env: w, svc: &erase.Service{DB: a.db, Writer: a.writer, Types: a.types.erase}}
	if up := uploadsOf(w); up != nil {
		tix.Uploads = up.read
	}
	flds := &fields.Handlers{Env: w, Service: &fields.Service{Writer: a.writer, Types: a.types.fields}, Tickets: tix}
	tix.Side, tix.FieldClauses, tix.FieldValues, tix.Templates = flds.Side, flds.ListClauses, flds.FieldValues, flds.TemplatesOf
	routes(e, w, people, tix, inbox, projects, webhooks, erasing, mon, secure, flds)
	return e
}

// clientIP says where a request came from. By default that is the peer's
// address and every forwarding header is ignored: anyone can send one.
// X-Forwarded-For is believed only when the peer (and each hop named before
// it, from the right) is one of the proxies named by --trusted-proxy. On
// Fly.io (FLY_APP_NAME set) and with no --trusted-proxy, the address is
// Fly-Client-IP, which Fly's proxy sets on every request it forwards.
func clientIP(proxies cidrList, fly bool) echo.IPExtractor {
	direct := echo.ExtractIPDirect()
	switch {
	case len(proxies) > 0:
		opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
		for _, n := range proxies {
			opts = append(opts, echo.TrustIPRange(n))
		}
		return echo.ExtractIPFromXFFHeader(opts...)
	case fly:
		return func(r *http.Request) string {
			if ip := net.ParseIP(strings.TrimSpace(r.Header.Get("Fly-Client-IP"))); ip != nil {
				return ip.String()
			}
			return direct(r)
		}
	}
	return direct
}

// cidrList is the value of --trusted-proxy: networks in CIDR form (a bare
// address means that one address), repeated or separated by commas.
type cidrList []*net.IPNet

func (l *cidrList) String() string {
	s := make([]string, len(*l))
	for i, n := range *l {
		s[i] = n.String()
	}
	return strings.Join(s, ",")
}

func (l *cidrList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			ip := net.ParseIP(part)
			if ip == nil {
				return fmt.Errorf("%q is neither an address nor a CIDR such as 10.0.0.0/8", part)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			*l = append(*l, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(part)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", part)
		}
		*l = append(*l, n)
	}
	return nil
}
