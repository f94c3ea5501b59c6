package replica

import (
	"context"
	"database/sql"
	"errors"
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
	// At is the replica's event at the position asked for, when it holds
	// it; Next is when the event after that one occurred, when it holds
	// that.
	At   *[32]byte
	Next time.Time
}

// ReadHead restores the latest state of the replica at url into a
// temporary file under dir (removed before it returns) and reads the last
// event of its log, and the hash of the event at position at. It reads the
// whole replica: it takes about as long as web restore without the
// verify.
func ReadHead(ctx context.Context, url, dir string, at int64) (Head, error) {
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
	out := Head{Head: h, Written: written}
	var hb []byte
	switch err := db.Read.QueryRowContext(ctx, `SELECT hash FROM events WHERE position = ?`, at).Scan(&hb); {
	case err == nil:
		out.At = new([32]byte)
		copy(out.At[:], hb)
	case !errors.Is(err, sql.ErrNoRows):
		return Head{}, err
	}
	var next string
	switch err := db.Read.QueryRowContext(ctx, `SELECT occurred_at FROM events WHERE position = ?`, at+1).Scan(&next); {
	case err == nil:
		if out.Next, err = time.Parse(time.RFC3339Nano, next); err != nil {
			return Head{}, err
		}
	case !errors.Is(err, sql.ErrNoRows):
		return Head{}, err
	}
	return out, nil
}
