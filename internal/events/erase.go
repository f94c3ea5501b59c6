package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"braid/internal/errs"
)

// ErrV1NotErasable refuses to erase the payload of a braid v1 event: its
// hash covers the data itself, so the data cannot leave the log without
// breaking the braid (docs/braid.md, Upgrade).
var ErrV1NotErasable = errs.E(errs.Invalid, "this event is braid v1: its payload is part of its hash and cannot be erased")

// ErasePayload erases the payload of the v2 event at position: the
// payloads row keeps kept as its data (the structural remnant, with every
// personal field removed; the caller decides which), loses its salt, and
// records erasedBy, the position of the erased event that says so. The
// braid stays valid: the event's hash covers the commitment, which stays.
//
// Call it inside the writer's transaction that appends the erased event,
// from Command.After (q there is the writer's connection and appended holds
// the erased event, whose Position is erasedBy): if it fails, the command
// rolls back with nothing appended. Then run SecureDelete, after the
// command, so the old bytes leave the WAL too. Erasing an erased payload
// again replaces the remnant and erased_by.
//
// It refuses a v1 event (ErrV1NotErasable), a position with no event
// (not_found), and an erasedBy that is not later than position.
func ErasePayload(ctx context.Context, q Querier, position int64, kept []byte, erasedBy int64) error {
	var format int
	err := q.QueryRowContext(ctx, `SELECT format FROM events WHERE position = ?`, position).Scan(&format)
	if errors.Is(err, sql.ErrNoRows) {
		return errs.E(errs.NotFound, "there is no event at position %d", position)
	}
	if err != nil {
		return fmt.Errorf("erase %d: %w", position, err)
	}
	if format != 2 {
		return ErrV1NotErasable
	}
	if erasedBy <= position {
		return errs.E(errs.Invalid, "erase %d: erased_by %d must be a later position", position, erasedBy)
	}
	if kept == nil {
		kept = []byte{}
	}
	r, err := q.ExecContext(ctx, `UPDATE payloads SET salt = NULL, data = ?, erased_by = ? WHERE position = ?`, string(kept), erasedBy, position)
	if err != nil {
		return fmt.Errorf("erase %d: %w", position, err)
	}
	if n, _ := r.RowsAffected(); n != 1 {
		return fmt.Errorf("erase %d: the v2 event has no payloads row", position)
	}
	return nil
}

// SecureDelete makes erased bytes leave the database file: secure_delete is
// on for every connection that writes (DSN: the writer's and Aux), so the pages that held them
// are overwritten with zeros; the old pages may still sit in the WAL until
// it is checkpointed, which this does (TRUNCATE: the WAL is emptied). Run it
// after the erasing command has committed. A reader holding an old snapshot
// can keep the checkpoint from finishing: it reports that as an error
// (busy), and the caller may retry. Copies made before (exports, backups,
// replicas) keep what they hold until they are rotated (docs/privacy.md).
func SecureDelete(ctx context.Context, db *DB) error {
	// The writer holds db.Write's one connection; Aux has the same pragmas.
	q := db.Aux
	if q == nil {
		q = db.Write
	}
	var busy, logFrames, done int
	if err := q.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done); err != nil {
		return fmt.Errorf("checkpoint the WAL: %w", err)
	}
	if busy != 0 {
		return errs.E(errs.Unavailable, "checkpoint the WAL: a reader holds an older snapshot; try again")
	}
	return nil
}
