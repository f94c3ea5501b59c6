package replica

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"braid/internal/events"
)

// Head is what a replica holds: the last event of its log and when
// Litestream last wrote to it.
type Head struct {
	events.Head
	// Written is when the newest file the replica holds was written.
	Written time.Time
}

// ReadHead restores the latest state of the replica at url into a
// temporary file under dir (removed before it returns) and reads the last
// event of its log. It reads the whole replica: it takes about as long
// as web restore without the verify.
func ReadHead(ctx context.Context, url, dir string) (Head, error) {
	client, err := NewClient(ctx, url)
	if err != nil {
		return Head{}, err
	}
	txid, written, err := newest(ctx, client)
	if err != nil {
		return Head{}, err
	}
	tmp, err := os.MkdirTemp(dir, "braid-replica-head-")
	if err != nil {
		return Head{}, err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "replica.db")
	if err := restore(ctx, client, url, path, time.Time{}, txid); err != nil {
		return Head{}, err
	}
	db, err := events.OpenReadOnly(ctx, path)
	if err != nil {
		return Head{}, err
	}
	defer db.Close()
	h, err := events.ReadHead(ctx, db.Read)
	if err != nil {
		return Head{}, err
	}
	return Head{Head: h, Written: written}, nil
}
