package main

import (
	"github.com/go-webauthn/webauthn/webauthn"

	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"braid/internal/access"
	"braid/internal/auth"
	"braid/internal/erase"
	"braid/internal/events"
	"braid/internal/fields"
	"braid/internal/hooks"
	"braid/internal/importer"
	"braid/internal/notify"
	"braid/internal/search"
	"braid/internal/stream"
	"braid/internal/tickets"
	"braid/internal/tlog"
	"braid/migrations"
)

// app is the opened database with its registry and writer.
type app struct {
	db     *events.DB
	reg    *events.Registry
	types  types
	writer *events.Writer
	tree   *tlog.Tree // the transparency tree, kept by the writer
	// stream serves GET /events/stream from the writer's hub.
	stream *stream.Handler
	log    *slog.Logger
	mailOn bool // serve mails digests (--smtp-url)
	// passkeys binds WebAuthn to the site's address (passkey.go); nil:
	// passkeys are off.
	passkeys *webauthn.WebAuthn
	// webhookPrivate lets webhooks reach private addresses (serve --webhook-allow-private).
	webhookPrivate bool
}

// types are the event types of each feature package.
type types struct {
	users   auth.Types
	tickets tickets.Types
	notify  notify.Types
	access  access.Types
	hooks   hooks.Types
	erase   erase.Types
	braid   events.Type[logContinued] // the log's own events (migratev2.go)
	// importer: people imported from another tracker (import-issues).
	importer importer.Types
	fields   fields.Types
}

// registry lists every event type and projection of Braid: adding an event
// type is one visible edit in the package that owns it.
func registry() (*events.Registry, types) {
	reg := events.NewRegistry()
	er := erase.Register(reg) // first: the projections below show erasures
	t := types{erase: er, users: auth.Register(reg), tickets: tickets.Register(reg), access: access.Register(reg), hooks: hooks.Register(reg)}
	t.notify = notify.Register(reg)     // reads the events of both, by their stored names
	t.importer = importer.Register(reg) // after auth: imported people are rows of users
	search.Register(reg, t.tickets)     // the search index, over the ticket events
	t.fields = fields.Register(reg)
	t.braid = registerBraid(reg)
	return reg, t
}

// openDB opens and migrates the database at path.
func openDB(ctx context.Context, path string) (*events.DB, error) {
	db, err := events.Open(ctx, path, migrations.FS)
	if err != nil {
		return nil, fail(exitFailed, "%v", err)
	}
	return db, nil
}

// openReadOnly opens the database at path for a command that only reads
// (refusing a path with no file, like requireDB):
// no migration, no file created or changed.
func openReadOnly(ctx context.Context, path string) (*events.DB, error) {
	if err := requireDB(path); err != nil {
		return nil, err
	}
	db, err := events.OpenReadOnly(ctx, path)
	if err != nil {
		return nil, fail(exitFailed, "%s", errMessage(err))
	}
	return db, nil
}

// openApp opens the database and starts the writer (which first brings every
// projection up to the head). obs, when given, observes the writer (metrics).
func openApp(ctx context.Context, path string, log *slog.Logger, obs ...events.Observer) (*app, error) {
	db, err := openDB(ctx, path)
	if err != nil {
		return nil, err
	}
	reg, t := registry()
	tree := tlog.New()
	hub := events.NewHub()
	opt := events.WriterOptions{Clock: time.Now, Logger: log, Hooks: []events.Hook{tree, hub}}
	if len(obs) > 0 {
		opt.Observer = obs[0]
	}
	w, err := events.NewWriter(ctx, db, reg, opt)
	if err != nil {
		db.Close()
		return nil, fail(exitFailed, "%v", err)
	}
	return &app{db: db, reg: reg, types: t, writer: w, tree: tree, log: log, stream: &stream.Handler{Hub: hub}}, nil
}

// Close drains the writer, then closes the database.
func (a *app) Close() error {
	werr := a.writer.Close()
	derr := a.db.Close()
	if werr != nil {
		return werr
	}
	return derr
}

// requireDB refuses to go on when there is no database at path: reading
// commands must not create an empty one and report on it.
func requireDB(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fail(exitFailed, "no database at %s: %v", path, errors.Unwrap(err))
	}
	return nil
}
