package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"

	"braid/internal/events"
	"braid/internal/tlog"
)

// maxCheckpoint is the most a checkpoint file (or answer) may hold: a
// checkpoint is three lines and a few signatures.
const maxCheckpoint = 64 << 10

// readCheckpointFile reads a signed checkpoint from path (- for r).
func readCheckpointFile(path string, r io.Reader) ([]byte, error) {
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxCheckpoint+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCheckpoint {
		return nil, fmt.Errorf("%s: more than %d KiB, not a checkpoint", path, maxCheckpoint>>10)
	}
	return b, nil
}

// verifySince is `web verify --since CHECKPOINT`: the checkpoint's
// signature, the log's consistency with it and the events after it, in
// O(log n) plus the new events. Exit 0 when the log extends it, 1 when it
// does not (naming the checkpoint's size and both roots) or an event after
// it is broken, 2 when the check cannot run.
func verifySince(ctx context.Context, e env, dbPath, path, vkey string, kf logKeyFlags, asJSON bool) error {
	msg, err := readCheckpointFile(path, e.stdin)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	if vkey == "" {
		k, err := tlog.ReadKey(kf.path())
		if errors.Is(err, iofs.ErrNotExist) {
			return fail(exitFailed, "no log key at %s to check the checkpoint's signature: pass --vkey with the log's verifier key", kf.path())
		}
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		vkey = k.VKey
	}
	origin, from, err := tlog.OpenCheckpoint(msg, vkey)
	if err != nil {
		return fail(exitBroken, "%s: %v", path, err)
	}
	db, err := openReadOnly(ctx, dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	c, err := tlog.VerifySince(ctx, db.Read, from)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	first := fmt.Sprintf("intact: %d events, head %s", c.Size, events.Hex(c.Head.Hash))
	switch {
	case c.Inconsistent:
		first = fmt.Sprintf("inconsistent with the checkpoint at size %d (root %s): %s", from.Size, tlog.B64(from.Root), c.Problem)
	case c.Position > 0:
		first = fmt.Sprintf("broken at position %d: %s", c.Position, c.Problem)
	}
	if asJSON {
		out := map[string]any{"intact": c.Consistent, "events": c.Size, "head": events.Hex(c.Head.Hash),
			"since": map[string]any{"origin": origin, "size": from.Size, "root": tlog.B64(from.Root), "consistent": c.Consistent,
				"inconsistent": c.Inconsistent, "rehashed": c.Rehashed, "root_now": tlog.B64(c.Root), "problem": c.Problem, "position": c.Position}}
		if c.LogRoot != nil {
			out["since"].(map[string]any)["log_root"] = tlog.B64(*c.LogRoot)
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			return fail(exitFailed, "%v", err)
		}
	}
	switch {
	case c.Consistent:
		if !asJSON {
			fmt.Fprintln(e.stdout, first)
			fmt.Fprintf(e.stdout, "consistent with checkpoint at size %d (%s, root %s): rehashed the %d events after it; tree of %d leaves, root %s\n",
				from.Size, origin, tlog.B64(from.Root), c.Rehashed, c.Size, tlog.B64(c.Root))
		}
		return nil
	case c.Inconsistent || c.Position > 0:
		if !asJSON {
			fmt.Fprintln(e.stdout, first)
		}
		return &exitError{code: exitBroken, err: errors.New(first)}
	}
	return fail(exitFailed, "%s", c.Problem)
}
