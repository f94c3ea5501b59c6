package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"braid/internal/events"
	"braid/internal/tlog"
	"braid/migrations"
)

// logContinued is the first event of a log made by `web migrate-v2`: it
// commits to the head of the log it continues (docs/braid.md).
type logContinued struct {
	Position   int64  `json:"position"`             // the old log's head position
	Hash       string `json:"hash"`                 // and hash, 64 hex
	Checkpoint string `json:"checkpoint,omitempty"` // the old log's latest signed checkpoint, when there was one
}

// registerBraid defines the events of the log itself (aggregate "braid").
func registerBraid(reg *events.Registry) events.Type[logContinued] {
	return events.Define[logContinued](reg, "log_continued", 1)
}

// migrateV2Cmd starts a new, braid v2 log in --out whose first event
// commits to the head of the log in --db, then appends every old event
// again as v2, in order, rebuilding the projections. The old file is only
// read.
func migrateV2Cmd(ctx context.Context, e env, args []string) error {
	fs, dbPath := newFlags(e, "migrate-v2", "migrate-v2 --db OLD --out NEW")
	out := fs.String("out", "", "path of the new database (must not exist)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fail(exitFailed, "%v", err)
	}
	if fs.NArg() > 0 {
		return fail(exitFailed, "unexpected argument %q", fs.Arg(0))
	}
	if *out == "" {
		return fail(exitFailed, "where to? usage: web migrate-v2 --db OLD --out NEW")
	}
	if _, err := os.Stat(*out); err == nil {
		return fail(exitFailed, "%s exists: migrate-v2 writes a new database only", *out)
	}
	old, err := openReadOnly(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer old.Close()
	rep, err := events.Verify(ctx, old.Read)
	if err != nil {
		return fail(exitFailed, "%s: %v", *dbPath, err)
	}
	if !rep.Intact {
		return fail(exitBroken, "%s is broken at position %d: %s; nothing migrated", *dbPath, rep.Failure.Position, rep.Failure.Reason)
	}
	cp, signed, err := tlog.Latest(ctx, old.Read)
	if err != nil {
		return fail(exitFailed, "%s: %v", *dbPath, err)
	}
	first, err := firstTime(ctx, old.Read)
	if err != nil {
		return fail(exitFailed, "%s: %v", *dbPath, err)
	}

	unlock, err := lockDB(*out)
	if err != nil {
		return err
	}
	defer unlock()
	n, head, err := migrateV2(ctx, old, *out, rep.Head, cp, signed, first)
	if err != nil {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(*out + suffix)
		}
		return fail(exitFailed, "migrate-v2: %v; nothing written to %s", err, *out)
	}
	what := "no signed checkpoint"
	if signed {
		what = fmt.Sprintf("its latest signed checkpoint (size %d)", cp.Size)
	}
	fmt.Fprintf(e.stdout, "migrated %d events from %s (head %d %s) to %s as braid v2\n", n, *dbPath, rep.Head.Position, events.Hex(rep.Head.Hash), *out)
	fmt.Fprintf(e.stdout, "position 1 of %s is log_continued: it commits to the old head and %s; every old event follows, one position later\n", *out, what)
	fmt.Fprintf(e.stdout, "new head %d %s; projections and the transparency tree built. Keep %s read-only as the archive of the old log; start the site on %s\n",
		head.Position, events.Hex(head.Hash), *dbPath, *out)
	return nil
}

// firstTime is the occurred_at of the old log's first event ("" for an
// empty log): log_continued takes it, so that occurred_at never goes back
// as positions rise.
func firstTime(ctx context.Context, q events.Querier) (string, error) {
	var at string
	err := q.QueryRowContext(ctx, `SELECT COALESCE((SELECT occurred_at FROM events WHERE position = 1), '')`).Scan(&at)
	return at, err
}

func migrateV2(ctx context.Context, old *events.DB, out string, oldHead events.Head, cp tlog.Checkpoint, signed bool, first string) (int64, events.Head, error) {
	db, err := events.Open(ctx, out, migrations.FS)
	if err != nil {
		return 0, events.Head{}, err
	}
	defer db.Close()
	reg, ty := registry()
	var now time.Time
	w, err := events.NewWriter(ctx, db, reg, events.WriterOptions{Clock: func() time.Time { return now }})
	if err != nil {
		return 0, events.Head{}, err
	}
	defer w.Close()
	cont := logContinued{Position: oldHead.Position, Hash: events.Hex(oldHead.Hash)}
	if signed {
		cont.Checkpoint = cp.Note
	}
	now = time.Now().UTC()
	if first != "" {
		if now, err = time.Parse(events.TimeFormat, first); err != nil {
			return 0, events.Head{}, fmt.Errorf("position 1: occurred_at %q: %v", first, err)
		}
	}
	cType := ty.braid
	if _, err := w.Do(ctx, events.Command{Actor: "braid", Kind: "migrate-v2", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
		return []events.Change{{AggregateType: "braid", AggregateID: "log", Expect: 0, Events: []events.Pending{cType.New(cont)}}}, nil
	}}); err != nil {
		return 0, events.Head{}, fmt.Errorf("log_continued: %w", err)
	}

	// Every old command again, as one command: the same actor, command id,
	// time and events, in order.
	var group []events.Event
	var n int64
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		g := group[0]
		at, err := time.Parse(events.TimeFormat, g.OccurredAt)
		if err != nil || at.Format(events.TimeFormat) != g.OccurredAt {
			return fmt.Errorf("position %d: occurred_at %q is not in Braid's time format", g.Position, g.OccurredAt)
		}
		now = at
		changes := make([]events.Change, len(group))
		for i, e := range group {
			changes[i] = events.Change{AggregateType: e.AggregateType, AggregateID: e.AggregateID, Expect: e.Version - 1,
				Events: []events.Pending{{Type: e.Type, Schema: e.Schema, Data: e.Data}}}
		}
		res, err := w.Do(ctx, events.Command{ID: g.CommandID, Actor: g.Actor, Kind: "migrate-v2",
			Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) { return changes, nil }})
		if err != nil {
			return fmt.Errorf("position %d: %w", g.Position, err)
		}
		if res.Repeated || len(res.Events) != len(group) {
			return fmt.Errorf("position %d: command %s was appended before (its events are not together in the old log)", g.Position, g.CommandID)
		}
		for i, e := range res.Events {
			o := group[i]
			if e.Position != o.Position+1 || e.OccurredAt != o.OccurredAt || e.Version != o.Version {
				return fmt.Errorf("position %d: re-appended at %d, version %d, time %s", o.Position, e.Position, e.Version, e.OccurredAt)
			}
		}
		n += int64(len(group))
		group = group[:0]
		return nil
	}
	err = events.Scan(ctx, old.Read, 0, func(e *events.Event) error {
		if len(group) > 0 && (e.CommandID != group[0].CommandID || e.Actor != group[0].Actor || e.OccurredAt != group[0].OccurredAt) {
			if err := flush(); err != nil {
				return err
			}
		}
		c := *e
		c.Data = append([]byte(nil), e.Data...)
		group = append(group, c)
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return n, events.Head{}, err
	}
	head := w.Head()
	w.Close()
	if err := copyOutside(ctx, db, old.Path, reg); err != nil {
		return n, head, err
	}
	if err := buildTree(ctx, db, head); err != nil {
		return n, head, err
	}
	return n, head, nil
}

// notCopied are the tables of the old database migrate-v2 leaves behind:
// the log itself, and what is bound to its positions and hashes (anchors,
// the transparency tree and its checkpoints, witnesses' sizes, mirror and
// verification state, webhook deliveries). The new log starts its own.
var notCopied = map[string]bool{
	"events": true, "payloads": true, "projection_checkpoints": true, "goose_db_version": true,
	"anchors": true, "tlog_hashes": true, "checkpoints": true, "witness_sizes": true, "mirror": true,
	"deep_checks": true, "ops_runs": true, "webhook_deliveries": true, "webhook_redeliveries": true,
}

// copyOutside copies the tables that live outside the log on purpose
// (credentials, sessions, passkeys, token and webhook secrets, settings)
// from the old database at oldPath into db: the projections were rebuilt
// from the log, these cannot be. Only columns both sides have are copied
// (an old file may predate some). A webhook's checkpoint moves one
// position on, as every event did.
func copyOutside(ctx context.Context, db *events.DB, oldPath string, reg *events.Registry) error {
	projected := map[string]bool{}
	for _, p := range reg.Projections() {
		for _, t := range p.Tables {
			projected[t] = true
		}
	}
	q := db.Write // one connection: ATTACH holds for what follows
	if _, err := q.ExecContext(ctx, `ATTACH DATABASE ? AS old`, "file:"+oldPath+"?mode=ro"); err != nil {
		return fmt.Errorf("attach %s: %w", oldPath, err)
	}
	defer q.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE old`)
	tables, err := tableNames(ctx, q, "main")
	if err != nil {
		return err
	}
	olds, err := tableNames(ctx, q, "old")
	if err != nil {
		return err
	}
	for _, t := range tables {
		if notCopied[t] || projected[t] || !slices.Contains(olds, t) {
			continue
		}
		newCols, err := columnNames(ctx, q, "main", t)
		if err != nil {
			return err
		}
		oldCols, err := columnNames(ctx, q, "old", t)
		if err != nil {
			return err
		}
		var cols []string
		for _, c := range newCols {
			if slices.Contains(oldCols, c) {
				cols = append(cols, `"`+c+`"`)
			}
		}
		list := strings.Join(cols, ", ")
		if _, err := q.ExecContext(ctx, `INSERT OR REPLACE INTO main."`+t+`" (`+list+`) SELECT `+list+` FROM old."`+t+`"`); err != nil {
			return fmt.Errorf("copy %s: %w", t, err)
		}
		if t == "webhook_checkpoints" {
			if _, err := q.ExecContext(ctx, `UPDATE main.webhook_checkpoints SET position = position + 1`); err != nil {
				return fmt.Errorf("copy %s: %w", t, err)
			}
		}
	}
	return nil
}

// tableNames lists the ordinary tables of schema (no virtual, shadow or
// internal ones).
func tableNames(ctx context.Context, q events.Querier, schema string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM pragma_table_list WHERE schema = ? AND type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`, schema)
	if err != nil {
		return nil, fmt.Errorf("tables of %s: %w", schema, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func columnNames(ctx context.Context, q events.Querier, schema, table string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM pragma_table_info(?, ?)`, table, schema)
	if err != nil {
		return nil, fmt.Errorf("columns of %s.%s: %w", schema, table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
