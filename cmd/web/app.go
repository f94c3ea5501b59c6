package main

import (
	"context"
	"log/slog"
	"time"

	"braid/internal/events"
	"braid/migrations"
)

// app is the opened database with its registry and writer.
type app struct {
	db     *events.DB
	reg    *events.Registry
	writer *events.Writer
	log    *slog.Logger
}

// registry lists every event type and projection of Braid: adding an event
// type is one visible edit in the package that owns it.
func registry() *events.Registry {
	reg := events.NewRegistry()
	return reg
}

// openDB opens and migrates the database at path.
func openDB(ctx context.Context, path string) (*events.DB, error) {
	db, err := events.Open(ctx, path, migrations.FS)
	if err != nil {
		return nil, fail(exitFailed, "%v", err)
	}
	return db, nil
}

// openApp opens the database and starts the writer (which first brings every
// projection up to the head).
func openApp(ctx context.Context, path string, log *slog.Logger) (*app, error) {
	db, err := openDB(ctx, path)
	if err != nil {
		return nil, err
	}
	reg := registry()
	w, err := events.NewWriter(ctx, db, reg, events.WriterOptions{Clock: time.Now, Logger: log})
	if err != nil {
		db.Close()
		return nil, fail(exitFailed, "%v", err)
	}
	return &app{db: db, reg: reg, writer: w, log: log}, nil
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
