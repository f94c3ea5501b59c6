package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"

	"braid/internal/errs"
)

// Restore writes the replica at url into out, a path that must not exist:
// the latest state it holds, or the state at time at when at is not zero
// (to about a second). It checks SQLite's integrity, not the braid: the
// caller verifies the log before calling the copy restored.
func Restore(ctx context.Context, url, out string, at time.Time, log *slog.Logger) error {
	if _, err := os.Lstat(out); err == nil {
		return errs.E(errs.Conflict, "%s already exists: restore into a new path", out)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	client, err := NewClient(ctx, url)
	if err != nil {
		return err
	}
	return restore(ctx, client, url, out, at, 0)
}

// restore restores the state at time at, or at transaction txid, or the
// latest when both are zero.
func restore(ctx context.Context, client litestream.ReplicaClient, url, out string, at time.Time, txid ltx.TXID) error {
	r := litestream.NewReplicaWithClient(nil, client)
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = out
	opt.Timestamp = at
	opt.TXID = txid
	opt.IntegrityCheck = litestream.IntegrityCheckQuick
	if err := r.Restore(ctx, opt); err != nil {
		if errors.Is(err, litestream.ErrTxNotAvailable) || errors.Is(err, litestream.ErrNoSnapshots) {
			return errs.E(errs.NotFound, "the replica at %s holds no database%s", redact(url), atText(at))
		}
		return fmt.Errorf("restore from %s: %w", redact(url), err)
	}
	return nil
}

func atText(at time.Time) string {
	if at.IsZero() {
		return ""
	}
	return " as of " + at.UTC().Format(time.RFC3339)
}
