package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"braid/internal/errs"
	"braid/internal/events"
)

// importCmd restores a database from an export: it checks the file, then
// inserts its events as they are (same bytes, same hashes) into a database
// with no events and builds every projection from them.
func importCmd(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "import", "import FILE --db NEW [--blobs DIR]   (FILE - reads standard input)")
	blobs := fs.String("blobs", "", "restore the attached files from DIR (default FILE.blobs beside FILE)")
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

	// One pass, so a pipe works (web import /dev/stdin, or - for standard
	// input): events.Import checks every link as it inserts and rolls
	// everything back on a broken one.
	var in io.Reader = e.stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		defer f.Close()
		in = f
	}
	_, serr := os.Stat(*dbPath)
	created := serr != nil
	unlock, err := lockDB(*dbPath)
	if err != nil {
		return err
	}
	defer unlock()
	if !created {
		// Refuse early, before reading the export.
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

	db, err := openDB(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	reg, _ := registry()
	got, err := events.Import(ctx, db, reg, in)
	if err == nil {
		err = importBlobs(ctx, e, db, blobsDir(*blobs, file))
	}
	if err != nil && created {
		// Nothing was imported: leave no empty database behind either.
		db.Close()
		for _, suffix := range []string{"", "-wal", "-shm", ".lock"} {
			os.Remove(*dbPath + suffix)
		}
	}
	var broken *events.BrokenError
	switch {
	case errors.As(err, &broken):
		return fail(exitBroken, "%s is broken at position %d: %s; nothing imported", file, broken.Failure.Position, broken.Failure.Reason)
	case errs.Code(err) == errs.Conflict:
		return fail(exitFailed, "%s: %s", *dbPath, errs.Message(err))
	case err != nil:
		return fail(exitFailed, "%s: %v", file, err)
	}
	if err := buildTree(ctx, db, got.Head); err != nil {
		return fail(exitFailed, "%s: %v", *dbPath, err)
	}
	var names []string
	for _, p := range reg.Projections() {
		names = append(names, p.Name)
	}
	fmt.Fprintf(e.stdout, "imported %d events into %s, head %s; projections built: %s\n",
		got.Events, *dbPath, events.Hex(got.Head.Hash), strings.Join(names, ", "))
	return nil
}
