package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/tickets"
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

// signedSize is the size of the latest signed checkpoint: tiles and proofs
// are served within it, so everything they show was signed.
func signedSize(c echo.Context, db *events.DB) (int64, bool, error) {
	cp, ok, err := tlog.Latest(c.Request().Context(), db.Read)
	return cp.Size, ok && cp.Size > 0, err
}

// tiles serves the tree's hash tiles (entries false, public) or its entry
// bundles (entries true, for signed-in people: they hold every event) per
// C2SP tlog-tiles, within the latest signed checkpoint: full tiles
// immutable, partial ones for a few seconds. A bad path or a tile beyond
// the signed tree is a 404.
func tiles(db *events.DB, entries bool) echo.HandlerFunc {
	prefix := "tile/"
	if entries {
		prefix = "tile/entries/"
	}
	return func(c echo.Context) error {
		t, err := tlog.ParseTilePath(prefix + c.Param("*"))
		if err != nil || t.Entries != entries {
			return c.String(http.StatusNotFound, "not a tile path (C2SP tlog-tiles: tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>])\n")
		}
		size, ok, err := signedSize(c, db)
		if err != nil {
			return err
		}
		if !ok {
			return c.String(http.StatusNotFound, "no checkpoint signed yet\n")
		}
		read := tlog.ReadTile
		if t.Entries {
			read = tlog.ReadEntryBundle
		}
		b, err := read(c.Request().Context(), db.Read, size, t)
		if errors.Is(err, tlog.ErrNotFound) {
			return c.String(http.StatusNotFound, fmt.Sprintf("%s is beyond the signed tree of %d entries\n", t.Path(), size))
		}
		if err != nil {
			return err
		}
		cc := "public, max-age=5"
		if t.W == tlog.TileWidth {
			cc = "public, max-age=31536000, immutable"
		}
		if entries {
			cc = strings.Replace(cc, "public", "private", 1) // behind sign-in: no shared cache
		}
		c.Response().Header().Set("Cache-Control", cc)
		return c.Blob(http.StatusOK, "application/octet-stream", b)
	}
}

// proofParams reads the named query parameters as decimal numbers; size
// defaults to the latest signed checkpoint's. A missing or malformed one
// is a 422, a size beyond the signed tree a 404.
func proofParams(c echo.Context, db *events.DB, names ...string) ([]int64, int64, bool, error) {
	vals := make([]int64, len(names))
	for i, n := range names {
		v, err := strconv.ParseInt(c.QueryParam(n), 10, 64)
		if err != nil || v < 1 {
			return nil, 0, false, c.JSON(http.StatusUnprocessableEntity, map[string]string{"error": n + " must be a whole number of at least 1"})
		}
		vals[i] = v
	}
	signed, ok, err := signedSize(c, db)
	if err != nil {
		return nil, 0, false, err
	}
	if !ok {
		return nil, 0, false, c.JSON(http.StatusNotFound, map[string]string{"error": "no checkpoint signed yet"})
	}
	size := signed
	if s := c.QueryParam("size"); s != "" {
		size, err = strconv.ParseInt(s, 10, 64)
		if err != nil || size < 1 {
			return nil, 0, false, c.JSON(http.StatusUnprocessableEntity, map[string]string{"error": "size must be a whole number of at least 1"})
		}
		if size > signed {
			return nil, 0, false, c.JSON(http.StatusNotFound, map[string]string{"error": fmt.Sprintf("size %d is beyond the latest signed checkpoint (%d)", size, signed)})
		}
	}
	for i, n := range names {
		if vals[i] > size {
			return nil, 0, false, c.JSON(http.StatusUnprocessableEntity, map[string]string{"error": fmt.Sprintf("%s %d is beyond size %d", n, vals[i], size)})
		}
	}
	return vals, size, true, nil
}

func b64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

func b64s(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = b64(h)
	}
	return out
}

// inclusionProof serves the RFC 6962 inclusion proof of the event at
// ?position=P (leaf P-1) in the tree of ?size=N (default: the latest
// signed checkpoint's size).
func inclusionProof(db *events.DB) echo.HandlerFunc {
	return func(c echo.Context) error {
		v, size, ok, err := proofParams(c, db, "position")
		if !ok {
			return err
		}
		p, err := tlog.ProveInclusion(c.Request().Context(), db.Read, size, v[0])
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{
			"position": p.Position, "index": p.Position - 1, "size": p.Size,
			"leaf": b64(p.Leaf), "root": b64(p.Root), "proof": b64s(p.Proof),
		})
	}
}

// consistencyProof serves the RFC 6962 consistency proof from the tree of
// ?old=M leaves to the one of ?size=N (default: the latest signed
// checkpoint's size).
func consistencyProof(db *events.DB) echo.HandlerFunc {
	return func(c echo.Context) error {
		v, size, ok, err := proofParams(c, db, "old")
		if !ok {
			return err
		}
		p, err := tlog.ProveConsistency(c.Request().Context(), db.Read, v[0], size)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{
			"old": p.Old, "size": p.Size,
			"old_root": b64(p.OldRoot), "root": b64(p.Root), "proof": b64s(p.Proof),
		})
	}
}

// ticketProof serves the proof bundle of a ticket (docs/braid.md): its
// events, each with its inclusion proof in the tree of the latest signed
// checkpoint, for `web verify --bundle` to check offline.
func ticketProof(w *web.Env) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id < 1 {
			return errs.E(errs.NotFound, "There is no such page: %q is not a number.", c.Param("id"))
		}
		ctx := c.Request().Context()
		cp, ok, err := tlog.Latest(ctx, w.DB.Read)
		if err != nil {
			return err
		}
		if !ok || cp.Size == 0 {
			return errs.E(errs.NotFound, "No checkpoint is signed yet: try again in a second.")
		}
		vkey := ""
		if w.Transparency != nil {
			vkey = w.Transparency.VKey
		}
		b, err := tlog.BuildBundle(ctx, w.DB.Read, cp, vkey, tickets.Aggregate, strconv.FormatInt(id, 10))
		if errors.Is(err, tlog.ErrNotFound) {
			return errs.E(errs.NotFound, "There is no ticket #%d in the latest signed checkpoint.", id)
		}
		if err != nil {
			return err
		}
		c.Response().Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="ticket-%d-proof.json"`, id))
		c.Response().Header().Set("Cache-Control", "no-cache")
		return c.JSON(http.StatusOK, b)
	}
}
