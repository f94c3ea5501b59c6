package events

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"braid/internal/errs"
)

// Any skips the expected-version check of a Change.
const Any int64 = -1

// Change is what a command decides to append to one aggregate.
type Change struct {
	AggregateType string
	AggregateID   string
	// Expect is the version the aggregate must be at (0 for a new one), or Any.
	Expect int64
	Events []Pending
}

// Command is one unit of work for the writer. Decide runs on the writer's
// goroutine inside the command's own SAVEPOINT, so what it reads is exactly
// what it appends after; it returns the changes or a domain error.
type Command struct {
	ID     string // idempotency key (command_id): 32 lowercase hex, or empty for a fresh one
	Actor  string
	Decide func(ctx context.Context, tx *Tx) ([]Change, error)
	// After, when set, runs in the same savepoint once the events are appended
	// and projected, for writes that live outside the log on purpose
	// (credentials). If it fails, the whole command rolls back.
	After func(ctx context.Context, q Querier, appended []Event) error

	// Kind names the command for metrics (open, comment, register…); when
	// empty, the type of the first event it appends stands in, or "other".
	Kind string

	// Fingerprint names what the command is (see Fingerprint): its kind and
	// input. It is stored beside every event the command appends, outside
	// the hashed fields and the export, so that the same command_id sent
	// again counts as a repeat only when it is the same command from the
	// same actor. A command_id is public (it is in the log): it must never
	// act as a capability.
	Fingerprint string
}

// Result is what a command appended. Repeated is true when the same actor
// had sent the same command (id and fingerprint) before: Events are then
// the ones appended the first time.
type Result struct {
	Events   []Event
	Repeated bool
}

// Head is the last position and hash of the log.
type Head struct {
	Position int64
	Hash     [32]byte
}

// Tx is what Decide may read: the log and the read tables as they stand in
// the writer's transaction.
type Tx struct {
	w   *Writer
	now time.Time
	// versions are the aggregate versions this command has read or
	// written, so the writer need not look them up again.
	versions map[aggKey]int64
}

// Now is the time of this command, read once from the writer's clock.
func (tx *Tx) Now() time.Time { return tx.now }

// Q returns the writer's connection for lookups in read tables.
func (tx *Tx) Q() Querier { return tx.w.q }

func (tx *Tx) remember(aggType, aggID string, v int64) {
	if tx.versions == nil {
		tx.versions = map[aggKey]int64{}
	}
	tx.versions[aggKey{aggType, aggID}] = v
}

// version is the aggregate's current version inside this command.
func (tx *Tx) version(ctx context.Context, aggType, aggID string) (int64, error) {
	k := aggKey{aggType, aggID}
	if v, ok := tx.versions[k]; ok {
		return v, nil
	}
	if v, ok := tx.w.pending[k]; ok {
		return v, nil
	}
	if v, ok := tx.w.known[k]; ok {
		return v, nil
	}
	var v int64
	if err := tx.w.stVersion.QueryRowContext(ctx, aggType, aggID).Scan(&v); err != nil {
		return 0, fmt.Errorf("version of %s %s: %w", aggType, aggID, err)
	}
	return v, nil
}

// Load returns the events of an aggregate with version > after, in order.
func (tx *Tx) Load(ctx context.Context, aggType, aggID string, after int64) ([]Event, error) {
	rows, err := tx.w.stLoad.QueryContext(ctx, aggType, aggID, after)
	if err != nil {
		return nil, fmt.Errorf("load %s %s: %w", aggType, aggID, err)
	}
	return scanEvents(rows)
}

// Last returns the version and hash of an aggregate's last event (0 and a
// zero hash for an aggregate with no events).
func (tx *Tx) Last(ctx context.Context, aggType, aggID string) (int64, [32]byte, error) {
	var v int64
	var h []byte
	var out [32]byte
	err := tx.w.stLast.QueryRowContext(ctx, aggType, aggID).Scan(&v, &h)
	if errors.Is(err, sql.ErrNoRows) {
		v, err = 0, nil
	}
	if err != nil {
		return 0, out, fmt.Errorf("last event of %s %s: %w", aggType, aggID, err)
	}
	copy(out[:], h)
	tx.remember(aggType, aggID, v)
	return v, out, nil
}

type request struct {
	cmd       *Command
	exclusive func(ctx context.Context, q Querier) error
	attach    [][2]string // files (path, schema name) to ATTACH around an exclusive run
	res       Result
	err       error
	done      chan struct{}
}

// WriterOptions tune the writer; zero values take defaults.
type WriterOptions struct {
	Clock    func() time.Time
	Logger   *slog.Logger
	MaxBatch int // commands per commit, default 256
	// Window is how long the writer waits for one more command before it
	// commits a batch (default 100µs; negative: never wait).
	Window time.Duration
	// Hooks keep derived data that must change in the same transaction as
	// the log (the transparency tree), in registration order.
	Hooks []Hook
	// Observer, when set, is told the outcome of every command and batch.
	Observer Observer
}

// Observer is told what the writer did, on the writer's goroutine: it must
// return at once (count, never block, never call the writer).
type Observer interface {
	// Command reports one command: its kind (Command.Kind, else the first
	// appended event's type, else "other") and outcome ("ok", "repeated",
	// or the error code that refused it: "invalid", "conflict", …).
	Command(kind, outcome string)
	// Batch reports one transaction: how many requests it held, whether it
	// committed, how long COMMIT took (SQLite writes the WAL frames and
	// fsyncs there, synchronous=FULL) and the whole batch from BEGIN.
	Batch(s BatchStats)
}

// BatchStats describe one batch of the writer, for an Observer.
type BatchStats struct {
	Commands  int
	Committed bool
	Commit    time.Duration // COMMIT alone: WAL write and fsync
	Total     time.Duration // BEGIN to the end of COMMIT
}

// Hook keeps data derived from every appended event in the writer's own
// transaction, without the log knowing what it is. The writer calls it on
// its goroutine only:
//
//   - Open once in NewWriter, outside any transaction, with the committed
//     head: bring the stored data up to it (in its own transaction on
//     write; read may be used to scan the log alongside).
//   - Append for each event, inside the command's savepoint, right after
//     the event's row is inserted. An error rolls the command back.
//   - Rewind when events after head were rolled back (a failed command or
//     batch): forget what Append was told since.
//   - Flush once per batch before COMMIT, in the transaction: write what
//     Append gathered. An error rolls the whole batch back.
//   - Committed after COMMIT with the new committed head.
type Hook interface {
	Open(ctx context.Context, read, write Querier, head Head) error
	Append(e *Event) error
	Rewind(head Head)
	Flush(ctx context.Context, q Querier) error
	Committed(head Head)
}

// Writer owns the single write connection. One goroutine drains waiting
// commands, runs each in its own SAVEPOINT, applies projections in the same
// transaction and commits the batch once (group commit).
type Writer struct {
	db     *DB
	reg    *Registry
	clock  func() time.Time
	log    *slog.Logger
	max    int
	window time.Duration
	conn   *sql.Conn
	q      *stmtCache // conn, with statements prepared once
	reqs   chan *request
	closed bool
	sendMu sync.RWMutex
	stop   chan struct{}

	headMu sync.RWMutex
	head   Head // committed head, for readers
	cur    Head // head inside the open transaction, writer goroutine only

	health error // why writes fail (a storage failure), nil when they work; under headMu

	// Aggregate versions, writer goroutine only: known holds committed
	// ones, pending those of commands in the open batch. The writer is the
	// log's only writer, so what it appended is the truth until it says so.
	known, pending map[aggKey]int64
	h              *hasher // one buffer and SHA-256 state for every event
	hooks          []Hook
	obs            Observer
	outs           [][2]string // kind and outcome of each command in the batch, for obs

	stInsert, stPayload, stLoad, stLast, stByCommand, stVersion, stCheckpoint *sql.Stmt
}

// NewWriter loads the head, brings every projection up to it and starts the
// writer goroutine.
func NewWriter(ctx context.Context, db *DB, reg *Registry, opt WriterOptions) (*Writer, error) {
	w := &Writer{db: db, reg: reg, clock: opt.Clock, log: opt.Logger, max: opt.MaxBatch,
		reqs: make(chan *request, 1024), stop: make(chan struct{}),
		known: map[aggKey]int64{}, pending: map[aggKey]int64{}, h: newHasher()}
	if w.clock == nil {
		w.clock = time.Now
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.max <= 0 {
		w.max = 256
	}
	switch w.window = opt.Window; {
	case w.window == 0:
		w.window = 100 * time.Microsecond
	case w.window < 0:
		w.window = 0
	}
	conn, err := db.Write.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("writer connection: %w", err)
	}
	w.conn = conn
	w.q = newStmtCache(conn)
	if err := w.prepare(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	h, err := ReadHead(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	w.head, w.cur = h, h
	if err := w.catchUp(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	w.hooks = opt.Hooks
	w.obs = opt.Observer
	for _, hk := range w.hooks {
		if err := hk.Open(ctx, db.Read, w.q, h); err != nil {
			w.q.close()
			conn.Close()
			return nil, err
		}
	}
	go w.loop()
	return w, nil
}

func (w *Writer) prepare(ctx context.Context) error {
	for _, s := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&w.stInsert, `INSERT INTO events (position, aggregate_type, aggregate_id, version, event_type, schema, actor, occurred_at, command_id, command_index, data, parent_hash, hash, command_fingerprint, format, commitment) VALUES (?,?,?,?,?,?,?,?,?,?,'',?,?,?,2,?)`},
		{&w.stPayload, `INSERT INTO payloads (position, salt, data) VALUES (?,?,?)`},
		{&w.stLoad, `SELECT ` + eventColumns + ` FROM ` + eventsFrom + ` WHERE e.aggregate_type = ? AND e.aggregate_id = ? AND e.version > ? ORDER BY e.version`},
		{&w.stLast, `SELECT version, hash FROM events WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY version DESC LIMIT 1`},
		{&w.stByCommand, `SELECT ` + eventColumns + `, e.command_fingerprint FROM ` + eventsFrom + ` WHERE e.command_id = ? ORDER BY e.command_index`},
		{&w.stVersion, `SELECT COALESCE(MAX(version), 0) FROM events WHERE aggregate_type = ? AND aggregate_id = ?`},
		{&w.stCheckpoint, `UPDATE projection_checkpoints SET position = ?`},
	} {
		st, err := w.conn.PrepareContext(ctx, s.sql)
		if err != nil {
			return fmt.Errorf("prepare writer statement: %w", err)
		}
		*s.st = st
	}
	return nil
}

// ReadHead reads the last position and hash from the log.
func ReadHead(ctx context.Context, q Querier) (Head, error) {
	var h Head
	var hb []byte
	err := q.QueryRowContext(ctx, `SELECT position, hash FROM events ORDER BY position DESC LIMIT 1`).Scan(&h.Position, &hb)
	if errors.Is(err, sql.ErrNoRows) {
		return Head{}, nil
	}
	if err != nil {
		return Head{}, fmt.Errorf("read head: %w", err)
	}
	copy(h.Hash[:], hb)
	return h, nil
}

// Head returns the committed head.
func (w *Writer) Head() Head {
	w.headMu.RLock()
	defer w.headMu.RUnlock()
	return w.head
}

// Queued returns how many requests wait for the writer (not counting the
// batch it is running).
func (w *Writer) Queued() int { return len(w.reqs) }

// Health returns nil when writes work (after a committed batch, or before
// any), else what the last storage failure was, in a few words ("disk
// full", "database read-only").
func (w *Writer) Health() error {
	w.headMu.RLock()
	defer w.headMu.RUnlock()
	return w.health
}

// Do runs cmd and waits for its outcome. Once Do returns nil the events are
// durable (committed with synchronous=FULL). A command_id that is not 32
// lowercase hex digits is refused (errs.Invalid, field command_id).
func (w *Writer) Do(ctx context.Context, cmd Command) (Result, error) {
	if cmd.ID == "" {
		cmd.ID = NewID()
	}
	if err := checkCommand(&cmd); err != nil {
		return Result{}, err
	}
	r := &request{cmd: &cmd, done: make(chan struct{})}
	if err := w.send(ctx, r); err != nil {
		return Result{}, err
	}
	return r.res, r.err
}

// Exclusive runs fn on the writer's connection inside the writer's
// transaction, with no command running alongside. Replay uses it to swap
// rebuilt tables in atomically.
func (w *Writer) Exclusive(ctx context.Context, fn func(ctx context.Context, q Querier) error) error {
	r := &request{exclusive: fn, done: make(chan struct{})}
	if err := w.send(ctx, r); err != nil {
		return err
	}
	return r.err
}

// ExclusiveAttached is Exclusive with the SQLite file at path attached to
// the writer's connection as schema name for the duration: ATTACH and
// DETACH cannot run inside a transaction, so the writer does them around
// its own. Replay uses it to copy rebuilt tables in with INSERT … SELECT.
func (w *Writer) ExclusiveAttached(ctx context.Context, files [][2]string, fn func(ctx context.Context, q Querier) error) error {
	if len(files) == 0 {
		return w.Exclusive(ctx, fn)
	}
	r := &request{exclusive: fn, attach: files, done: make(chan struct{})}
	if err := w.send(ctx, r); err != nil {
		return err
	}
	return r.err
}

func (w *Writer) send(ctx context.Context, r *request) error {
	w.sendMu.RLock()
	if w.closed {
		w.sendMu.RUnlock()
		return errs.E(errs.Internal, "writer is closed")
	}
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		w.sendMu.RUnlock()
		return ctx.Err()
	}
	w.sendMu.RUnlock()
	<-r.done // the command runs to its end even if ctx ends meanwhile
	return nil
}

// Close stops taking commands, finishes those already queued and closes
// the write connection.
func (w *Writer) Close() error {
	w.sendMu.Lock()
	if w.closed {
		w.sendMu.Unlock()
		return nil
	}
	w.closed = true
	close(w.reqs)
	w.sendMu.Unlock()
	<-w.stop
	for _, st := range []*sql.Stmt{w.stInsert, w.stPayload, w.stLoad, w.stLast, w.stByCommand, w.stVersion, w.stCheckpoint} {
		st.Close()
	}
	w.q.close()
	return w.conn.Close()
}

func (w *Writer) loop() {
	defer close(w.stop)
	batch := make([]*request, 0, w.max)
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	for r := range w.reqs {
		if len(r.attach) > 0 {
			w.runAttached(r)
			continue
		}
		batch = append(batch[:0], r)
		var next *request // an attached run that must go alone, after this batch
		// Gather: take what is waiting, then keep taking while more arrive
		// within a short quiet window. Callers answered by the last commit
		// are typically a few microseconds from sending their next command;
		// waiting for them lets one fsync cover them all.
	gather:
		for len(batch) < w.max {
			var r *request
			var ok bool
			select {
			case r, ok = <-w.reqs:
			default:
				quiet.Reset(w.window)
				select {
				case r, ok = <-w.reqs:
					quiet.Stop()
				case <-quiet.C:
					break gather
				}
			}
			if !ok {
				break gather
			}
			if len(r.attach) > 0 {
				next = r
				break gather
			}
			batch = append(batch, r)
		}
		w.run(batch, nil)
		if next != nil {
			w.runAttached(next)
		}
	}
}

// runAttached runs one ExclusiveAttached request in a batch of its own,
// with the file attached around the transaction.
func (w *Writer) runAttached(r *request) {
	ctx := context.Background()
	detach := func(files [][2]string) {
		for _, f := range files {
			if _, err := w.conn.ExecContext(ctx, `DETACH DATABASE `+quoteIdent(f[1])); err != nil && r.err == nil {
				r.err = fmt.Errorf("detach %s: %w", f[0], err)
			}
		}
	}
	for i, f := range r.attach {
		if _, err := w.conn.ExecContext(ctx, `ATTACH DATABASE ? AS `+quoteIdent(f[1]), f[0]); err != nil {
			r.err = fmt.Errorf("attach %s: %w", f[0], err)
			detach(r.attach[:i])
			close(r.done)
			return
		}
	}
	w.run([]*request{r}, func() { detach(r.attach) })
}

// run executes one batch in one transaction and answers every request,
// after calling before (when not nil) once the transaction has ended.
func (w *Writer) run(batch []*request, before func()) {
	ctx := context.Background()
	var began, committing, ended time.Time
	if w.obs != nil {
		began = time.Now()
	}
	committed := false
	defer func() {
		if before != nil {
			before()
		}
		if w.obs != nil {
			w.outcomes(batch)
		}
		for _, r := range batch {
			close(r.done)
		}
		// Callers first: counting holds up no one.
		if w.obs != nil {
			w.observe(committed, began, committing, ended)
		}
	}()
	if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		err = storage(fmt.Errorf("begin: %w", err))
		w.log.Error("writer", slog.Any("err", err))
		w.setHealth(err, false)
		for _, r := range batch {
			r.err = err
		}
		return
	}
	start := w.cur
	// A storage failure (disk full, read-only) fails the whole batch: SQLite
	// may have rolled the transaction back already, and nothing after it
	// could be saved either.
	var err error
	for _, r := range batch {
		if err != nil {
			r.err = err
			continue
		}
		if r.exclusive != nil {
			r.err = storage(w.savepoint(ctx, func() error { return r.exclusive(ctx, w.q) }))
		} else {
			r.res, r.err = w.one(ctx, r.cmd)
		}
		if errs.Code(r.err) == errs.Unavailable {
			err = r.err
		}
	}
	if err == nil && w.cur.Position != start.Position {
		if _, err = w.stCheckpoint.ExecContext(ctx, w.cur.Position); err != nil {
			err = storage(fmt.Errorf("record checkpoints: %w", err))
		}
	}
	for _, hk := range w.hooks {
		if err == nil {
			err = storage(hk.Flush(ctx, w.q))
		}
	}
	if err == nil {
		if w.obs != nil {
			committing = time.Now()
		}
		if _, err = w.conn.ExecContext(ctx, "COMMIT"); err != nil {
			err = storage(fmt.Errorf("commit: %w", err))
		}
		if w.obs != nil {
			ended = time.Now()
		}
	}
	w.setHealth(err, err == nil)
	if err != nil {
		// Nothing in this batch is durable: say so to everyone.
		w.log.Error("writer: batch rolled back", slog.Any("err", err), slog.Int("commands", len(batch)))
		w.conn.ExecContext(ctx, "ROLLBACK")
		w.cur = start
		w.rewind(start)
		clear(w.pending)
		for _, r := range batch {
			if r.err == nil || errs.Code(err) == errs.Unavailable {
				r.res, r.err = Result{}, err
			}
		}
		return
	}
	committed = true
	w.headMu.Lock()
	w.head = w.cur
	w.headMu.Unlock()
	for _, hk := range w.hooks {
		hk.Committed(w.cur)
	}
	if len(w.known)+len(w.pending) > 200000 {
		clear(w.known)
	}
	for k, v := range w.pending {
		w.known[k] = v
	}
	clear(w.pending)
}

// outcomes notes what each command of a finished batch came to, for
// observe, before the callers are answered (and may change what they got).
func (w *Writer) outcomes(batch []*request) {
	w.outs = w.outs[:0]
	for _, r := range batch {
		if r.cmd == nil {
			continue // an exclusive run (replay), not a command
		}
		kind := r.cmd.Kind
		if kind == "" {
			kind = "other"
			if len(r.res.Events) > 0 {
				kind = r.res.Events[0].Type
			}
		}
		outcome := "ok"
		switch {
		case r.err != nil:
			outcome = string(errs.Code(r.err))
		case r.res.Repeated:
			outcome = "repeated"
		}
		w.outs = append(w.outs, [2]string{kind, outcome})
	}
}

// observe tells the observer what each command of the batch came to and
// how long the batch took.
func (w *Writer) observe(committed bool, began, committing, ended time.Time) {
	for _, o := range w.outs {
		w.obs.Command(o[0], o[1])
	}
	s := BatchStats{Commands: len(w.outs), Committed: committed}
	if !ended.IsZero() {
		s.Commit, s.Total = ended.Sub(committing), ended.Sub(began)
	} else {
		s.Total = time.Since(began)
	}
	w.obs.Batch(s)
}

// rewind tells every hook that the events after head were rolled back.
func (w *Writer) rewind(head Head) {
	for _, hk := range w.hooks {
		hk.Rewind(head)
	}
}

// setHealth records the outcome of a batch for Health: a storage failure
// sets it, a commit clears it, anything else leaves it.
func (w *Writer) setHealth(err error, committed bool) {
	reason := reasonOf(err)
	if reason == nil && !committed {
		return
	}
	w.headMu.Lock()
	w.health = reason
	w.headMu.Unlock()
}

// savepoint runs fn in its own SAVEPOINT, rolling back to it on error.
func (w *Writer) savepoint(ctx context.Context, fn func() error) error {
	if _, err := w.q.ExecContext(ctx, "SAVEPOINT cmd"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if err := fn(); err != nil {
		if _, rerr := w.q.ExecContext(ctx, "ROLLBACK TO cmd"); rerr != nil {
			return errors.Join(err, fmt.Errorf("rollback to savepoint: %w", rerr))
		}
		w.q.ExecContext(ctx, "RELEASE cmd")
		return err
	}
	if _, err := w.q.ExecContext(ctx, "RELEASE cmd"); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// one runs a single command inside its savepoint.
//
// Idempotency costs nothing on the common path: the UNIQUE index on
// (command_id, command_index) refuses a command_id seen before, and only
// then, or when the decision is a refusal or a no-op, does the writer look
// for what the command appended the first time and answer with that.
func (w *Writer) one(ctx context.Context, cmd *Command) (Result, error) {
	before := w.cur
	var res Result
	retry := false // the command may have run before: look it up
	tx := &Tx{w: w, now: w.clock().UTC()}
	err := w.savepoint(ctx, func() error {
		changes, err := cmd.Decide(ctx, tx)
		if err != nil || len(changes) == 0 {
			retry = true
			return err
		}
		at := tx.now.Format(TimeFormat)
		idx := 0
		for _, ch := range changes {
			v, err := tx.version(ctx, ch.AggregateType, ch.AggregateID)
			if err != nil {
				return err
			}
			if ch.Expect != Any && ch.Expect != v {
				retry = true
				return &errs.Error{Code: errs.Conflict, Message: fmt.Sprintf("%s %s has changed since you loaded it (version %d, now %d)", ch.AggregateType, ch.AggregateID, ch.Expect, v)}
			}
			for i := range ch.Events {
				p := &ch.Events[i]
				if !w.reg.Known(p.Type) {
					return fmt.Errorf("append: unregistered event type %q", p.Type)
				}
				if err := checkEvent(ch.AggregateType, ch.AggregateID, p); err != nil {
					return err
				}
				v++
				e := Event{Position: w.cur.Position + 1, AggregateType: ch.AggregateType, AggregateID: ch.AggregateID,
					Version: v, Type: p.Type, Schema: p.Schema, Actor: cmd.Actor, OccurredAt: at,
					CommandID: cmd.ID, Data: p.Data, ParentHash: w.cur.Hash}
				// Every new event is braid v2: the row holds the
				// commitment, the payload and its salt go to payloads.
				e.SealV2()
				e.Hash = w.h.hash(&e)
				if _, err := w.stInsert.ExecContext(ctx, e.Position, e.AggregateType, e.AggregateID, e.Version,
					e.Type, e.Schema, e.Actor, e.OccurredAt, e.CommandID, idx, e.ParentHash[:], e.Hash[:], cmd.Fingerprint, e.Commitment[:]); err != nil {
					retry = retry || isConstraint(err)
					return fmt.Errorf("append %s: %w", e.Type, err)
				}
				if _, err := w.stPayload.ExecContext(ctx, e.Position, e.Salt, string(e.Data)); err != nil {
					return fmt.Errorf("append %s payload: %w", e.Type, err)
				}
				if err := w.reg.Apply(ctx, w.q, &e); err != nil {
					return err
				}
				for _, hk := range w.hooks {
					if err := hk.Append(&e); err != nil {
						return err
					}
				}
				w.cur = Head{Position: e.Position, Hash: e.Hash}
				res.Events = append(res.Events, e)
				idx++
			}
			tx.remember(ch.AggregateType, ch.AggregateID, v)
		}
		if cmd.After != nil {
			if err := cmd.After(ctx, w.q, res.Events); err != nil {
				return err
			}
		}
		return nil
	})
	err = storage(err)
	if retry {
		// After the rollback (if any): has this command appended before?
		prior, same, perr := w.prior(ctx, cmd)
		switch {
		case perr != nil:
			err = errors.Join(err, perr)
		case len(prior) > 0 && same:
			w.cur = before
			w.rewind(before)
			return Result{Events: prior, Repeated: true}, nil
		case len(prior) > 0:
			// The id was used by someone else, or for something else:
			// never report their success, never say whose it was.
			err = errReused
		}
	}
	if err != nil {
		w.cur = before
		w.rewind(before)
		if errs.Code(err) == errs.Internal {
			w.log.Error("command failed", slog.String("command_id", cmd.ID), slog.Any("err", err))
		}
		return Result{}, err
	}
	for k, v := range tx.versions {
		w.pending[k] = v
	}
	return res, nil
}

// prior returns the events cmd's command_id appended, if any, and whether
// they are cmd's own: the same actor and the same fingerprint. An event
// stored with an empty fingerprint (appended before fingerprints were
// kept, or imported from an export, which has none) matches on the actor
// alone.
func (w *Writer) prior(ctx context.Context, cmd *Command) ([]Event, bool, error) {
	rows, err := w.stByCommand.QueryContext(ctx, cmd.ID)
	if err != nil {
		return nil, false, fmt.Errorf("look up command %s: %w", cmd.ID, err)
	}
	defer rows.Close()
	var out []Event
	same := true
	for rows.Next() {
		var e Event
		var fp string
		if err := scanEvent(withFingerprint{rows, &fp}, &e); err != nil {
			return nil, false, fmt.Errorf("scan event: %w", err)
		}
		if e.Actor != cmd.Actor || (fp != "" && fp != cmd.Fingerprint) {
			same = false
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("look up command %s: %w", cmd.ID, err)
	}
	return out, same, nil
}

// withFingerprint scans an event row followed by its command_fingerprint.
type withFingerprint struct {
	rows *sql.Rows
	fp   *string
}

func (s withFingerprint) Scan(dest ...any) error { return s.rows.Scan(append(dest, s.fp)...) }

// isConstraint reports whether err is SQLite refusing a constraint (here:
// the UNIQUE index on command_id and command_index).
func isConstraint(err error) bool {
	var se interface{ Code() int }
	return errors.As(err, &se) && se.Code()&0xff == sqliteConstraint
}

const sqliteConstraint = 19 // SQLITE_CONSTRAINT, the primary result code

// NewID returns a 128-bit id in hex for command ids: 48 bits of Unix
// milliseconds, then 80 random bits (the layout of a UUIDv7). Ids made
// around the same time sort together, so the UNIQUE index on command_id
// grows at its end instead of dirtying a random page per command.
func NewID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}
