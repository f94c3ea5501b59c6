package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"braid/internal/ops"
	"braid/internal/replica"
)

// doctor checks a deployment and prints one line per check: exit 0 when
// none failed (warnings allowed), 1 when one did, 2 when it could not run.
func doctor(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "doctor", "doctor [--db PATH] [--log-key FILE] [--anchor-every 1h] [--verify-within 24h] [--export-within 48h] [--replicate URL [--replica-within 1m]]")
	keyPath := fs.String("log-key", e.getenv("BRAID_LOG_KEY"), "the log's signing key file (env BRAID_LOG_KEY; default the database path with .key appended)")
	d := &ops.Doctor{}
	fs.DurationVar(&d.AnchorEvery, "anchor-every", 0, "how often anchors are expected (serve's --anchor-every): older than that warns, twice that fails (0: not judged)")
	fs.DurationVar(&d.VerifyWithin, "verify-within", 24*time.Hour, "warn when the last recorded verify is older than this")
	fs.DurationVar(&d.ExportWithin, "export-within", 48*time.Hour, "fail when the last good scheduled export is older than this")
	rurl := fs.String("replicate", e.getenv("BRAID_REPLICATE"), "check the replica serve --replicate writes to (the same URL; env BRAID_REPLICATE): it must hold this log, up to --replica-within of the head")
	fs.DurationVar(&d.ReplicaWithin, "replica-within", time.Minute, "with --replicate: a replica lacking only events younger than this is ok, older ones warn")
	if err := parse(fs, args); err != nil {
		return err
	}
	if d.AnchorEvery < 0 || d.VerifyWithin <= 0 || d.ExportWithin <= 0 || d.ReplicaWithin <= 0 {
		return fail(exitFailed, "--anchor-every, --verify-within, --export-within and --replica-within want positive durations, e.g. 24h")
	}
	if u := *rurl; u != "" {
		if !strings.HasPrefix(u, "file:///") && !strings.HasPrefix(u, "s3://") {
			return fail(exitFailed, "--replicate %q: want file:///path or s3://bucket/path?endpoint=…", redactURL(u))
		}
		d.ReplicaURL = redactURL(u)
		d.Replica = func(ctx context.Context, local int64) (ops.ReplicaHead, error) {
			h, err := replica.ReadHead(ctx, u, "", local)
			if err != nil {
				return ops.ReplicaHead{}, errors.New(errMessage(err))
			}
			return ops.ReplicaHead{Position: h.Position, Hash: h.Hash, Written: h.Written, At: h.At, Next: h.Next}, nil
		}
		_, err := os.Stat(*dbPath + "-follower") // serve --follow's marker
		d.Follower = err == nil
	}
	db, err := openReadOnly(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Read.PingContext(ctx); err != nil {
		return fail(exitFailed, "%s: %v", *dbPath, err)
	}
	d.DBPath, d.Read, d.KeyPath = *dbPath, db.Read, cmp.Or(*keyPath, *dbPath+".key")
	failed := 0
	for _, c := range d.Run(ctx) {
		fmt.Fprintf(e.stdout, "%-4s  %-11s  %s\n", c.Status, c.Name, c.Message)
		if c.Status == ops.Fail {
			failed++
		}
	}
	if failed > 0 {
		return fail(exitBroken, "%d of the checks failed", failed)
	}
	return nil
}
