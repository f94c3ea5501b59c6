package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"braid/internal/attach"
	"braid/internal/events"
)

// blobsDir is where an export's files go, and where an import looks for
// them: --blobs DIR, else FILE.blobs beside the export file; "" when the
// export goes to standard output without --blobs.
func blobsDir(flag, file string) string {
	if flag != "" || file == "" || file == "-" {
		return flag
	}
	return file + ".blobs"
}

// exportBlobs writes every attached file of the log into dir, one file
// per SHA-256 (docs/attachments.md).
func exportBlobs(ctx context.Context, e env, db *events.DB, dir string) error {
	if dir == "" {
		refs, err := attach.Refs(ctx, db.Read)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		if len(refs) > 0 {
			fmt.Fprintf(e.stderr, "note: the log has %d attachments; their files were not exported (add --blobs DIR)\n", len(refs))
		}
		return nil
	}
	n, err := attach.WriteDir(ctx, db.Read, dir)
	if err != nil {
		return fail(exitFailed, "export attachments: %v", err)
	}
	if n > 0 {
		fmt.Fprintf(e.stderr, "exported %d attached files to %s\n", n, dir)
	}
	return nil
}

// importBlobs restores the files the imported log attaches from dir,
// checking each against its hash. A file missing or altered fails the
// import, naming it.
func importBlobs(ctx context.Context, e env, db *events.DB, dir string) error {
	refs, err := attach.Refs(ctx, db.Read)
	if err != nil || len(refs) == 0 {
		return err
	}
	if dir == "" {
		return fmt.Errorf("the log attaches %d files: give their directory with --blobs DIR", len(refs))
	}
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("the log attaches %d files, but %v (give --blobs DIR)", len(refs), err)
	}
	n, err := attach.ReadDir(ctx, db.Write, dir, time.Now().UTC().Format(events.TimeFormat))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "restored %d attached files from %s, each checked against its SHA-256\n", n, dir)
	return nil
}
