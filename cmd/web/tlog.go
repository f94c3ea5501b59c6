package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"braid/internal/events"
	"braid/internal/tlog"
	"braid/internal/web"
)

// logKeyFlags are the flags naming the log's signing key and origin.
type logKeyFlags struct {
	key, origin *string
	db          *string
}

func addLogKeyFlags(fs *flag.FlagSet, e env, dbPath *string) logKeyFlags {
	return logKeyFlags{
		key:    fs.String("log-key", e.getenv("BRAID_LOG_KEY"), "file holding the log's Ed25519 note signing key, made at first serve with mode 0600 (env BRAID_LOG_KEY; default the database path with .key appended)"),
		origin: fs.String("origin", "", `the log's origin line in checkpoints, also its key's name (default "braid.local/" and the database file's name without extension)`),
		db:     dbPath,
	}
}

func (f logKeyFlags) path() string { return cmp.Or(*f.key, *f.db+".key") }

func (f logKeyFlags) originOr() string { return cmp.Or(*f.origin, tlog.DefaultOrigin(*f.db)) }

// loadOrCreate reads the log's key, making it on first start.
func (f logKeyFlags) loadOrCreate(log *slog.Logger) (tlog.Key, error) {
	k, created, err := tlog.LoadOrCreateKey(f.path(), f.originOr())
	if err != nil {
		return k, fail(exitFailed, "%v", err)
	}
	if created {
		log.Info("made the log's signing key", slog.String("file", f.path()), slog.String("origin", k.Origin), slog.String("vkey", k.VKey))
	}
	return k, nil
}

// keyCmd prints the verifier key and origin of the log's signing key.
func keyCmd(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "key", "key [--db PATH] [--log-key FILE]")
	kf := addLogKeyFlags(fs, e, dbPath)
	if err := parse(fs, args); err != nil {
		return err
	}
	k, err := tlog.ReadKey(kf.path())
	if errors.Is(err, iofs.ErrNotExist) {
		return fail(exitFailed, "no log key at %s: `web serve` makes one at its first start", kf.path())
	}
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	fmt.Fprintf(e.stdout, "vkey %s\norigin %s\n", k.VKey, k.Origin)
	return nil
}

// startSigner runs the checkpoint signer until the returned stop is called.
func startSigner(ctx context.Context, a *app, k tlog.Key, log *slog.Logger) (stop func(), err error) {
	latest := int64(-1)
	c, ok, err := tlog.Latest(ctx, a.db.Read)
	if err != nil {
		return nil, fail(exitFailed, "%v", err)
	}
	if ok {
		latest = c.Size
	}
	s := &tlog.Signer{Tree: a.tree, Key: k, Store: a.writer.Exclusive, Log: log}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.Run(sctx, latest) }()
	return func() { cancel(); <-done }, nil
}

// checkpoint serves the latest signed checkpoint, per C2SP
// tlog-checkpoint: text/plain, the note as signed.
func checkpoint(db *events.DB) echo.HandlerFunc {
	return func(c echo.Context) error {
		cp, ok, err := tlog.Latest(c.Request().Context(), db.Read)
		if err != nil {
			return err
		}
		h := c.Response().Header()
		h.Set("Cache-Control", "no-cache")
		if !ok {
			return c.String(http.StatusNotFound, "no checkpoint signed yet\n")
		}
		return c.Blob(http.StatusOK, "text/plain; charset=utf-8", []byte(cp.Note))
	}
}

// treeCheck adds the check of the transparency tree over the events the
// braid check covered.
func treeCheck(ctx context.Context, db *events.DB, r events.Report, rep *web.VerifyReport) error {
	if !r.Intact {
		return nil
	}
	c, err := tlog.Verify(ctx, db.Read, r.Head.Position)
	if err != nil {
		return err
	}
	if c.Missing {
		return nil
	}
	rep.AddTreeCheck(c)
	return nil
}

// buildTree stores the transparency tree of a freshly imported log.
func buildTree(ctx context.Context, db *events.DB, head events.Head) error {
	conn, err := db.Write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return tlog.New().Open(ctx, db.Read, conn, head)
}
