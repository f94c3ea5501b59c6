package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// BrokenError says the braid is broken at Failure: replay and import stop
// there and change nothing.
type BrokenError struct {
	Failure Failure
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("broken at position %d: %s", e.Failure.Position, e.Failure.Reason)
}

// ReplayOptions tune Replay; zero values take defaults.
type ReplayOptions struct {
	// TempDir holds the scratch database the projections are rebuilt in;
	// default: the directory of the live database.
	TempDir string
	// Batch is how many events are applied per commit of the scratch
	// database; default 20,000.
	Batch int
	// Progress, when set, is called now and then with the events applied
	// so far and the head position when the replay started.
	Progress func(done, total int64)
	Logger   *slog.Logger
	// ExactFTS builds FTS5 tables as FTS5 in the scratch database too. By
	// default a plain FTS5 table is rebuilt as an ordinary table with the
	// same columns and rowids (FTS5 flushes its index at every statement
	// inside a transaction, which makes it the slowest part of a replay by
	// far), and the live FTS5 table is filled from it in bulk at the swap;
	// an external-content FTS5 table is rebuilt from its content table at
	// the swap, so triggers that only feed it do not run in the scratch
	// database. Set ExactFTS when a projection's handlers query an FTS5
	// table (MATCH) or send it FTS5 commands.
	ExactFTS bool
}

// ReplayResult says what a replay did.
type ReplayResult struct {
	Events      int64 // events applied (and checked)
	Head        Head  // the head the projections now stand at
	Projections []string
	Took        time.Duration
}

// Replay rebuilds every projection of reg from the log, without stopping
// the site. It creates fresh copies of the projections' tables in scratch
// files (one per group of projections, each filled on its own goroutine)
// and streams the log into them from the read pool while checking the
// braid. Then, inside the writer's transaction with the files attached
// (nothing else writes meanwhile), it replaces the rows of every live table
// with the rebuilt ones, applies the events appended since to the live
// tables and sets every checkpoint: the swap is atomic and readers see the
// old tables until it commits.
//
// A broken braid stops the replay at the first broken link with a
// *BrokenError; the live tables are then untouched.
func Replay(ctx context.Context, db *DB, reg *Registry, w *Writer, opt ReplayOptions) (ReplayResult, error) {
	start := time.Now()
	if opt.Batch <= 0 {
		opt.Batch = 20000
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.TempDir == "" {
		opt.TempDir = filepath.Dir(db.Path)
	}
	var res ReplayResult
	for _, p := range reg.Projections() {
		res.Projections = append(res.Projections, p.Name)
	}
	schema, err := projectionSchema(ctx, db.Read, reg)
	if err != nil {
		return res, err
	}

	parts := partition(reg, schema)
	defer func() {
		for _, p := range parts {
			p.close()
		}
	}()
	for i, p := range parts {
		if err := p.open(ctx, db.Read, opt, i, schema); err != nil {
			return res, err
		}
	}

	total := w.Head().Position
	c := NewChecker()
	opt.Logger.Info("replay: rebuilding projections in scratch databases", slog.Int("parts", len(parts)), slog.Int64("head", total))
	n, err := stream(ctx, db.Read, c, parts, opt, total)
	res.Events = n
	if err != nil {
		return res, err
	}
	if opt.Progress != nil {
		opt.Progress(res.Events, total)
	}
	attach := make([][2]string, len(parts))
	for i, p := range parts {
		attach[i] = [2]string{p.path, p.name}
	}

	streamed := res.Events
	err = w.ExclusiveAttached(ctx, attach, func(ctx context.Context, q Querier) error {
		// Nothing else writes now. The rebuilt rows are complete up to
		// what we streamed: triggers on the live tables (an index kept by
		// triggers, say) must not fire while they are copied in. DDL is
		// transactional, so they are dropped and created again inside the
		// same transaction.
		for _, t := range schema {
			for _, tr := range t.triggers {
				if _, err := q.ExecContext(ctx, `DROP TRIGGER main.`+quoteIdent(tr)); err != nil {
					return fmt.Errorf("replay: %w", err)
				}
			}
		}
		for _, t := range schema {
			if err := t.swap(ctx, q); err != nil {
				return err
			}
		}
		for _, t := range schema {
			for _, ddl := range t.trigDDL {
				if _, err := q.ExecContext(ctx, ddl); err != nil {
					return fmt.Errorf("replay: restore trigger on %s: %w", t.name, err)
				}
			}
		}
		// Then what was appended while we streamed, applied to the live
		// tables by the same projection functions, on the writer's own
		// connection, braid checked as before.
		if err := Scan(ctx, q, c.Report().Head.Position, func(e *Event) error {
			if f := c.Add(e); f != nil {
				return &BrokenError{Failure: *f}
			}
			res.Events++
			return reg.Apply(ctx, q, e)
		}); err != nil {
			return err
		}
		return setCheckpoints(ctx, q, reg, c.Report().Head.Position)
	})
	if err != nil {
		return res, err
	}
	res.Head = c.Report().Head
	res.Took = time.Since(start)
	opt.Logger.Info("replay: projections swapped in", slog.Int64("events", res.Events),
		slog.Int64("appended_meanwhile", res.Events-streamed), slog.Duration("took", res.Took))
	return res, nil
}

// part is a group of projections rebuilt in a scratch file of its own, on
// a goroutine of its own: projections write disjoint tables, so they can
// be applied side by side on both cores. Projections joined by an
// external-content FTS5 table share a part.
type part struct {
	projections []*Projection
	tables      []projTable
	path, name  string
	sdb         *sql.DB
	conn        *sql.Conn
	cache       *stmtCache
	inTx        bool
	n           int
}

// partition groups reg's projections into parts.
// maxParts is the most scratch files a replay attaches at once.
const maxParts = 8

func partition(reg *Registry, schema []projTable) []*part {
	owner := map[string]int{} // table -> projection index
	for i, p := range reg.Projections() {
		for _, t := range p.Tables {
			owner[t] = i
		}
	}
	group := make([]int, len(reg.Projections()))
	for i := range group {
		group[i] = i
	}
	find := func(i int) int {
		for group[i] != i {
			i = group[i]
		}
		return i
	}
	for _, t := range schema {
		if t.external != "" {
			a, b := find(owner[t.name]), find(owner[t.external])
			group[a] = b
		}
	}
	byRoot := map[int]*part{}
	var parts []*part
	for i, p := range reg.Projections() {
		r := find(i)
		if byRoot[r] == nil {
			byRoot[r] = &part{}
			parts = append(parts, byRoot[r])
		}
		byRoot[r].projections = append(byRoot[r].projections, p)
	}
	// Every part is a file attached to the writer's connection at the swap,
	// and SQLite attaches at most 10 (SQLITE_MAX_ATTACHED): past maxParts,
	// the smallest parts share a file. Projections of different parts are
	// independent, so any of them may share one.
	for len(parts) > maxParts {
		slices.SortStableFunc(parts, func(a, b *part) int { return len(b.projections) - len(a.projections) })
		last := parts[len(parts)-1]
		parts = parts[:len(parts)-1]
		into := parts[len(parts)-1]
		into.projections = append(into.projections, last.projections...)
	}
	for _, pt := range parts {
		mine := map[string]bool{}
		for _, p := range pt.projections {
			for _, t := range p.Tables {
				mine[t] = true
			}
		}
		for _, t := range schema {
			if mine[t.name] {
				pt.tables = append(pt.tables, t)
			}
		}
	}
	return parts
}

// open creates the part's scratch file and tables, and marks the part's
// tables in schema with the name the file will be attached under.
func (pt *part) open(ctx context.Context, live Querier, opt ReplayOptions, i int, schema []projTable) error {
	f, err := os.CreateTemp(opt.TempDir, "braid-replay-*.db")
	if err != nil {
		return fmt.Errorf("replay: scratch database: %w", err)
	}
	pt.path, pt.name = f.Name(), fmt.Sprintf("replay_src%d", i)
	f.Close()
	// A scratch file: no journal, no fsync. If we crash it is thrown away.
	if pt.sdb, err = sql.Open("sqlite", fileURI(pt.path)+"?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)&_pragma=cache_size(-10000)&_pragma=temp_store(MEMORY)"); err != nil {
		return fmt.Errorf("replay: scratch database: %w", err)
	}
	pt.sdb.SetMaxOpenConns(1)
	if pt.conn, err = pt.sdb.Conn(ctx); err != nil {
		return fmt.Errorf("replay: scratch database: %w", err)
	}
	if err := createScratch(ctx, live, pt.conn, pt.tables, opt.ExactFTS); err != nil {
		return err
	}
	pt.cache = newStmtCache(pt.conn)
	for j := range schema {
		for k := range pt.tables {
			if schema[j].name == pt.tables[k].name {
				schema[j].src = pt.name
				schema[j].cols = pt.tables[k].cols
			}
		}
	}
	return nil
}

// apply applies one event to the part's projections, committing the
// scratch file every batch events.
func (pt *part) apply(ctx context.Context, e *Event, batch int) error {
	if !pt.inTx {
		if _, err := pt.conn.ExecContext(ctx, "BEGIN"); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		pt.inTx = true
	}
	var memo any
	for _, p := range pt.projections {
		if err := p.apply(ctx, pt.cache, e, &memo); err != nil {
			return err
		}
	}
	if pt.n++; pt.n%batch == 0 {
		return pt.commit(ctx)
	}
	return nil
}

func (pt *part) commit(ctx context.Context) error {
	if !pt.inTx {
		return nil
	}
	pt.inTx = false
	if _, err := pt.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("replay: commit scratch: %w", err)
	}
	return nil
}

func (pt *part) close() {
	if pt.cache != nil {
		pt.cache.close()
	}
	if pt.conn != nil {
		if pt.inTx {
			pt.conn.ExecContext(context.Background(), "ROLLBACK")
		}
		pt.conn.Close()
	}
	if pt.sdb != nil {
		pt.sdb.Close()
	}
	if pt.path != "" {
		for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
			os.Remove(pt.path + suffix)
		}
	}
}

// stream reads the log and checks its braid on one goroutine and applies
// it to each part on a goroutine per part, in batches, every part seeing
// every event in position order. It returns how many events it read.
func stream(ctx context.Context, q Querier, c *Checker, parts []*part, opt ReplayOptions, total int64) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	size := min(1024, opt.Batch)
	chans := make([]chan []Event, len(parts))
	errs := make(chan error, len(parts)+1)
	var n int64
	for i, pt := range parts {
		chans[i] = make(chan []Event, 2)
		go func() {
			var err error
			for b := range chans[i] {
				for j := 0; j < len(b) && err == nil; j++ {
					err = pt.apply(ctx, &b[j], opt.Batch)
				}
				if err != nil {
					cancel() // stop the reader; drain what it sent
				}
			}
			if err == nil {
				err = pt.commit(ctx)
			}
			errs <- err
		}()
	}
	go func() {
		defer func() {
			for _, ch := range chans {
				close(ch)
			}
		}()
		buf := make([]Event, 0, size)
		send := func() error {
			for _, ch := range chans {
				select {
				case ch <- buf:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			n += int64(len(buf))
			if opt.Progress != nil {
				opt.Progress(n, total)
			}
			buf = make([]Event, 0, size)
			return nil
		}
		err := Scan(ctx, q, 0, func(e *Event) error {
			if f := c.Add(e); f != nil {
				return &BrokenError{Failure: *f}
			}
			buf = append(buf, *e)
			if len(buf) == size {
				return send()
			}
			return nil
		})
		if err == nil && len(buf) > 0 {
			err = send()
		}
		errs <- err
	}()
	var first error
	for range len(parts) + 1 {
		if err := <-errs; err != nil && (first == nil || errorsIsCanceled(first)) {
			first = err
		}
	}
	return n, first
}

// errorsIsCanceled reports whether err is only the cancellation that
// another goroutine's failure caused.
func errorsIsCanceled(err error) bool { return errors.Is(err, context.Canceled) }

// projTable is one table a projection owns, with what it takes to rebuild
// and copy it.
type projTable struct {
	name     string
	src      string   // the schema its rebuilt copy is attached under
	ddl      []string // CREATE TABLE / VIRTUAL TABLE, then its indexes and triggers
	triggers []string // names of its triggers
	trigDDL  []string // and their CREATE TRIGGER statements
	cols     []string
	rowid    bool   // has a rowid to keep (not WITHOUT ROWID)
	external string // fts5 external content table, rebuilt from it
}

var (
	withoutRowid = regexp.MustCompile(`(?i)\)\s*WITHOUT\s+ROWID\s*;?\s*$`)
	fts5Table    = regexp.MustCompile(`(?is)^\s*CREATE\s+VIRTUAL\s+TABLE\s+.*\bUSING\s+fts5\s*\(`)
	fts5Content  = regexp.MustCompile(`(?i)\bcontent\s*=\s*(?:'([^']*)'|"([^"]*)"|([A-Za-z0-9_]+))`)
)

// projectionSchema reads from the live database the DDL of every table the
// projections of reg own: the table (or FTS5 virtual table; its shadow
// tables come with it), its indexes and its triggers.
func projectionSchema(ctx context.Context, q Querier, reg *Registry) ([]projTable, error) {
	var out []projTable
	seen := map[string]bool{}
	for _, p := range reg.Projections() {
		for _, name := range p.Tables {
			if seen[name] {
				return nil, fmt.Errorf("replay: table %s is owned twice", name)
			}
			seen[name] = true
			t := projTable{name: name, rowid: true}
			rows, err := q.QueryContext(ctx, `SELECT type, name, sql FROM sqlite_master
				WHERE tbl_name = ? AND sql IS NOT NULL
				ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, rowid`, name)
			if err != nil {
				return nil, fmt.Errorf("replay: schema of %s: %w", name, err)
			}
			for rows.Next() {
				var typ, tname, ddl string
				if err := rows.Scan(&typ, &tname, &ddl); err != nil {
					rows.Close()
					return nil, fmt.Errorf("replay: schema of %s: %w", name, err)
				}
				if typ == "table" {
					if withoutRowid.MatchString(ddl) {
						t.rowid = false
					}
					if fts5Table.MatchString(ddl) {
						if m := fts5Content.FindStringSubmatch(ddl); m != nil {
							ext := m[1] + m[2] + m[3]
							if ext == "" {
								rows.Close()
								return nil, fmt.Errorf("replay: %s is a contentless fts5 table: its rows cannot be copied", name)
							}
							t.external = ext
						}
					}
				}
				if typ == "trigger" {
					t.triggers = append(t.triggers, tname)
					t.trigDDL = append(t.trigDDL, ddl)
				}
				t.ddl = append(t.ddl, ddl)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("replay: schema of %s: %w", name, err)
			}
			if len(t.ddl) == 0 {
				return nil, fmt.Errorf("replay: projection %s owns table %s, which does not exist", p.Name, name)
			}
			out = append(out, t)
		}
	}
	for _, t := range out {
		if t.external != "" && !seen[t.external] {
			return nil, fmt.Errorf("replay: %s indexes %s, which no projection owns", t.name, t.external)
		}
	}
	// External-content indexes are rebuilt after their content tables.
	ordered := make([]projTable, 0, len(out))
	for _, t := range out {
		if t.external == "" {
			ordered = append(ordered, t)
		}
	}
	for _, t := range out {
		if t.external != "" {
			ordered = append(ordered, t)
		}
	}
	return ordered, nil
}

var (
	triggerTargets = regexp.MustCompile(`(?i)\b(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+(?:main\.)?["'\x60\[]?(\w+)`)
	triggerBody    = regexp.MustCompile(`(?is)\bBEGIN\b(.*)\bEND\b`)
)

// createScratch creates the projection tables in the scratch database and
// reads their columns (see ReplayOptions.ExactFTS).
func createScratch(ctx context.Context, live Querier, scratch *sql.Conn, schema []projTable, exact bool) error {
	external := map[string]bool{}
	for _, t := range schema {
		if t.external != "" {
			external[strings.ToLower(t.name)] = true
		}
	}
	for i := range schema {
		t := &schema[i]
		for j, stmt := range t.ddl {
			if j == 0 && !exact && t.external == "" && fts5Table.MatchString(stmt) {
				// Columns come from the live table; options (tokenize=…)
				// do not matter to an ordinary table.
				if err := t.readColumns(ctx, live); err != nil {
					return err
				}
				stmt = "CREATE TABLE " + quoteIdent(t.name) + " (" + strings.Join(t.cols, ", ") + ")"
				t.cols = nil
			}
			if !exact && strings.HasPrefix(strings.ToUpper(strings.TrimSpace(stmt)), "CREATE TRIGGER") && onlyFeeds(stmt, external) {
				continue
			}
			if _, err := scratch.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("replay: create %s in the scratch database: %w", t.name, err)
			}
		}
		if err := t.readColumns(ctx, scratch); err != nil {
			return err
		}
	}
	return nil
}

// onlyFeeds reports whether every table the trigger writes is in tables.
func onlyFeeds(trigger string, tables map[string]bool) bool {
	m := triggerBody.FindStringSubmatch(trigger)
	if m == nil {
		return false
	}
	targets := triggerTargets.FindAllStringSubmatch(m[1], -1)
	if len(targets) == 0 {
		return false
	}
	for _, t := range targets {
		if !tables[strings.ToLower(t[1])] {
			return false
		}
	}
	return true
}

func (t *projTable) readColumns(ctx context.Context, q Querier) error {
	rows, err := q.QueryContext(ctx, `SELECT name FROM pragma_table_xinfo(?) WHERE hidden = 0 ORDER BY cid`, t.name)
	if err != nil {
		return fmt.Errorf("replay: columns of %s: %w", t.name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return fmt.Errorf("replay: columns of %s: %w", t.name, err)
		}
		t.cols = append(t.cols, quoteIdent(c))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("replay: columns of %s: %w", t.name, err)
	}
	if len(t.cols) == 0 {
		return fmt.Errorf("replay: table %s has no columns", t.name)
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// swap replaces every row of the live table (through dst, the writer's
// connection inside its transaction) with the rows rebuilt in the scratch
// file attached as t.src, copied inside SQLite. Rows keep their rowids, so
// the tables end identical row for row. (The writer attaches and detaches
// the files around its transaction: SQLite cannot DETACH inside one.)
func (t projTable) swap(ctx context.Context, dst Querier) error {
	name := quoteIdent(t.name)
	if t.external != "" {
		// The content table is already replaced; index it afresh.
		_, err := dst.ExecContext(ctx, `INSERT INTO main.`+name+`(`+name+`) VALUES ('rebuild')`)
		if err != nil {
			return fmt.Errorf("replay: rebuild %s: %w", t.name, err)
		}
		return nil
	}
	if _, err := dst.ExecContext(ctx, `DELETE FROM main.`+name); err != nil {
		return fmt.Errorf("replay: empty %s: %w", t.name, err)
	}
	cols := t.cols
	if t.rowid {
		cols = append([]string{"rowid"}, cols...)
	}
	list := strings.Join(cols, ", ")
	if _, err := dst.ExecContext(ctx, `INSERT INTO main.`+name+` (`+list+`) SELECT `+list+` FROM `+t.src+`.`+name); err != nil {
		return fmt.Errorf("replay: copy %s: %w", t.name, err)
	}
	return nil
}
