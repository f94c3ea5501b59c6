package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"braid/internal/events"
)

func export(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "export", "export [--db PATH] [-o FILE] [--blobs DIR]")
	out := fs.String("o", "", "write to FILE instead of standard output")
	blobs := fs.String("blobs", "", "write the attached files into DIR, one file per SHA-256 (default FILE.blobs beside -o FILE; none on standard output)")
	if err := parse(fs, args); err != nil {
		return err
	}
	db, err := openReadOnly(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	var w io.Writer = e.stdout
	var f *os.File
	if *out != "" {
		// Write beside FILE and rename over it only once the export is
		// whole and on disk: a failed export leaves FILE as it was.
		if f, err = os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".*.tmp"); err != nil {
			return fail(exitFailed, "%v", err)
		}
		w = f
	}
	n, err := events.Export(ctx, db.Read, w)
	if f != nil {
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), *out)
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	if f != nil {
		fmt.Fprintf(e.stderr, "exported %d events to %s\n", n, *out)
	}
	return exportBlobs(ctx, e, db, blobsDir(*blobs, *out))
}
