package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"braid/internal/errs"
	"braid/internal/events"
)

// importCmd restores a database from an export: it checks the file, then
// inserts its events as they are (same bytes, same hashes) into a database
// with no events and builds every projection from them.
func importCmd(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "import", "import FILE --db NEW")
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fail(exitFailed, "%v", err)
	}
	if file == "" && fs.NArg() > 0 {
		file = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return fail(exitFailed, "%v", err)
		}
	}
	if fs.NArg() > 0 {
		return fail(exitFailed, "unexpected argument %q", fs.Arg(0))
	}
	if file == "" {
		return fail(exitFailed, "which export? usage: web import FILE --db NEW")
	}

	f, err := os.Open(file)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	defer f.Close()
	if _, err := os.Stat(*dbPath); err == nil {
		// Refuse early, before reading the whole file.
		db, err := openDB(ctx, *dbPath)
		if err != nil {
			return err
		}
		h, err := events.ReadHead(ctx, db.Read)
		db.Close()
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		if h.Position > 0 {
			return fail(exitFailed, "%s already has %d events: import only into a new database", *dbPath, h.Position)
		}
	}
	rep, err := events.VerifyExport(f)
	if err != nil {
		return fail(exitFailed, "%s: %v", file, err)
	}
	if !rep.Intact {
		return fail(exitBroken, "%s is broken at position %d: %s; nothing imported", file, rep.Failure.Position, rep.Failure.Reason)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return fail(exitFailed, "%v", err)
	}

	db, err := openDB(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	reg, _ := registry()
	got, err := events.Import(ctx, db, reg, f)
	var broken *events.BrokenError
	switch {
	case errors.As(err, &broken):
		return fail(exitBroken, "%s changed while importing: %v; nothing imported", file, err)
	case errs.Code(err) == errs.Conflict:
		return fail(exitFailed, "%s: %s", *dbPath, errs.Message(err))
	case err != nil:
		return fail(exitFailed, "%s: %v", file, err)
	}
	var names []string
	for _, p := range reg.Projections() {
		names = append(names, p.Name)
	}
	fmt.Fprintf(e.stdout, "imported %d events into %s, head %s; projections built: %s\n",
		got.Events, *dbPath, events.Hex(got.Head.Hash), strings.Join(names, ", "))
	return nil
}
