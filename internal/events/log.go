package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"

	"braid/internal/errs"
)

// eventColumns are the columns an Event is scanned from, read FROM
// eventsFrom (events as e, payloads as p): data is the payload whether it
// lives in the row (v1) or in payloads (v2, erased or not).
const eventColumns = `e.position, e.aggregate_type, e.aggregate_id, e.version, e.event_type, e.schema, e.actor, e.occurred_at, e.command_id, COALESCE(p.data, e.data), e.parent_hash, e.hash, e.format, e.commitment, p.salt, p.erased_by`

// eventsFrom is the FROM clause eventColumns reads: every column of a
// WHERE after it must name its table (e. or p.). A LEFT JOIN on the
// payloads' INTEGER PRIMARY KEY is one rowid lookup per row.
const eventsFrom = `events e LEFT JOIN payloads p ON p.position = e.position AND e.format = 2`

func scanEvent(s interface{ Scan(...any) error }, e *Event) error {
	var data string
	var ph, h, commitment, salt []byte
	var erased sql.NullInt64
	if err := s.Scan(&e.Position, &e.AggregateType, &e.AggregateID, &e.Version, &e.Type, &e.Schema,
		&e.Actor, &e.OccurredAt, &e.CommandID, &data, &ph, &h, &e.Format, &commitment, &salt, &erased); err != nil {
		return err
	}
	e.Data = []byte(data)
	copy(e.ParentHash[:], ph)
	copy(e.Hash[:], h)
	e.Commitment = [32]byte{}
	copy(e.Commitment[:], commitment)
	e.Salt = salt
	e.ErasedBy = erased.Int64
	return nil
}

func scanEvents(rows *sql.Rows) ([]Event, error) {
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		if err := scanEvent(rows, &e); err != nil {
			return nil, fmt.Errorf("scan event: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// Get returns the event at position.
func Get(ctx context.Context, q Querier, position int64) (Event, error) {
	var e Event
	err := scanEvent(q.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM `+eventsFrom+` WHERE e.position = ?`, position), &e)
	if errors.Is(err, sql.ErrNoRows) {
		return e, errs.E(errs.NotFound, "there is no event at position %d", position)
	}
	if err != nil {
		return e, fmt.Errorf("event %d: %w", position, err)
	}
	return e, nil
}

// Aggregate returns the events of one aggregate up to position upTo (0 for
// all), in order.
func Aggregate(ctx context.Context, q Querier, aggType, aggID string, upTo int64) ([]Event, error) {
	if upTo <= 0 {
		upTo = 1<<63 - 1
	}
	rows, err := q.QueryContext(ctx, `SELECT `+eventColumns+` FROM `+eventsFrom+`
		WHERE e.aggregate_type = ? AND e.aggregate_id = ? AND e.position <= ? ORDER BY e.version`, aggType, aggID, upTo)
	if err != nil {
		return nil, fmt.Errorf("events of %s %s: %w", aggType, aggID, err)
	}
	return scanEvents(rows)
}

// Feed returns up to limit events, newest first, with position < before
// (0 for the newest).
func Feed(ctx context.Context, q Querier, before int64, limit int) ([]Event, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := q.QueryContext(ctx, `SELECT `+eventColumns+` FROM `+eventsFrom+` WHERE e.position < ? ORDER BY e.position DESC LIMIT ?`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	return scanEvents(rows)
}

// PositionAt returns the last position whose occurred_at is at or before t
// (an RFC 3339 time in TimeFormat), or 0.
func PositionAt(ctx context.Context, q Querier, t string) (int64, error) {
	var p sql.NullInt64
	// occurred_at is written by one writer from one clock, so it rises with
	// position; a binary search over positions would need no index.
	err := q.QueryRowContext(ctx, `SELECT MAX(position) FROM events WHERE occurred_at <= ?`, t).Scan(&p)
	if err != nil {
		return 0, fmt.Errorf("position at %s: %w", t, err)
	}
	return p.Int64, nil
}

// Scan streams events with position > after in order to fn, reading in
// chunks so the log is never held in memory at once.
func Scan(ctx context.Context, q Querier, after int64, fn func(e *Event) error) error {
	const chunk = 4096
	for {
		rows, err := q.QueryContext(ctx, `SELECT `+eventColumns+` FROM `+eventsFrom+` WHERE e.position > ? ORDER BY e.position LIMIT ?`, after, chunk)
		if err != nil {
			return fmt.Errorf("scan events: %w", err)
		}
		n := 0
		var e Event
		for rows.Next() {
			if err := scanEvent(rows, &e); err != nil {
				rows.Close()
				return fmt.Errorf("scan event: %w", err)
			}
			if err := fn(&e); err != nil {
				rows.Close()
				return err
			}
			after = e.Position
			n++
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("scan events: %w", err)
		}
		if n < chunk {
			return nil
		}
	}
}

// catchUp brings every projection whose checkpoint is behind the head up to
// it, applying only that projection. A projection added in a new release
// starts at 0 and is built here, with no full replay.
func (w *Writer) catchUp(ctx context.Context) error {
	for _, p := range w.reg.Projections() {
		var cp int64
		err := w.conn.QueryRowContext(ctx, `SELECT position FROM projection_checkpoints WHERE name = ?`, p.Name).Scan(&cp)
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := w.conn.ExecContext(ctx, `INSERT INTO projection_checkpoints (name, position) VALUES (?, 0)`, p.Name); err != nil {
				return fmt.Errorf("checkpoint %s: %w", p.Name, err)
			}
		} else if err != nil {
			return fmt.Errorf("checkpoint %s: %w", p.Name, err)
		}
		if cp >= w.cur.Position {
			continue
		}
		w.log.Info("building projection from the log", slog.String("projection", p.Name), slog.Int64("from", cp), slog.Int64("to", w.cur.Position))
		err = func() error {
			if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
				return err
			}
			err := Scan(ctx, w.db.Read, cp, func(e *Event) error { return p.Apply(ctx, w.conn, e) })
			if err == nil {
				_, err = w.conn.ExecContext(ctx, `UPDATE projection_checkpoints SET position = ? WHERE name = ?`, w.cur.Position, p.Name)
			}
			if err == nil {
				_, err = w.conn.ExecContext(ctx, "COMMIT")
			}
			if err != nil {
				w.conn.ExecContext(ctx, "ROLLBACK")
			}
			return err
		}()
		if err != nil {
			return fmt.Errorf("build projection %s: %w", p.Name, err)
		}
	}
	return nil
}

// ByActor returns the last limit events whose actor is actor, newest
// first (the events_actor_idx index).
func ByActor(ctx context.Context, q Querier, actor string, limit int) ([]Event, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+eventColumns+` FROM `+eventsFrom+` WHERE e.actor = ? ORDER BY e.position DESC LIMIT ?`, actor, limit)
	if err != nil {
		return nil, fmt.Errorf("events by %s: %w", actor, err)
	}
	return scanEvents(rows)
}
