package events

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DeepDiff is the first row where a live projection table differs from
// the one rebuilt from the log.
type DeepDiff struct {
	Table   string `json:"table"`
	Key     string `json:"key"`    // the row: its primary key (id=7) or rowid=N
	Column  string `json:"column"` // the column that differs, "" when the row is missing on one side
	Live    string `json:"live"`   // the live value, or "(no such row)"
	Rebuilt string `json:"rebuilt"`
}

func (d DeepDiff) String() string {
	if d.Column == "" {
		return fmt.Sprintf("table %s, row %s: live %s, rebuilt from the log %s", d.Table, d.Key, d.Live, d.Rebuilt)
	}
	return fmt.Sprintf("table %s, row %s, column %s: live %s, rebuilt from the log %s", d.Table, d.Key, d.Column, d.Live, d.Rebuilt)
}

// DeepReport is what DeepVerify found.
type DeepReport struct {
	Events int64     `json:"events"` // events replayed
	Head   int64     `json:"head"`   // the position the live tables were compared at
	Tables []string  `json:"tables"` // tables compared
	Rows   int64     `json:"rows"`   // live rows compared
	OK     bool      `json:"ok"`
	Diff   *DeepDiff `json:"diff,omitempty"`
	// Broken is set when the braid itself is broken: nothing was compared.
	Broken *Failure      `json:"broken,omitempty"`
	Took   time.Duration `json:"-"`
}

// Problem says in one line what is wrong, "" when nothing is.
func (r DeepReport) Problem() string {
	switch {
	case r.Broken != nil:
		return fmt.Sprintf("broken at position %d: %s", r.Broken.Position, r.Broken.Reason)
	case r.Diff != nil:
		return r.Diff.String()
	}
	return ""
}

// DeepVerify rebuilds every projection of reg from the log into scratch
// files, as Replay does, and compares each projection table with the live
// one row by row, naming the first row that differs. It reads the live
// database in one read transaction (one snapshot: the log and the tables
// agree even while a writer appends), and writes nothing to it.
// opt.TempDir defaults to the system's temporary directory.
//
// An FTS5 table indexing another table's content is not compared: it is
// rebuilt from that table, which is.
func DeepVerify(ctx context.Context, read *sql.DB, reg *Registry, opt ReplayOptions) (DeepReport, error) {
	start := time.Now()
	var res DeepReport
	if opt.Batch <= 0 {
		opt.Batch = 20000
	}
	if opt.TempDir == "" {
		opt.TempDir = os.TempDir()
	}
	tx, err := read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return res, fmt.Errorf("deep verify: %w", err)
	}
	defer tx.Rollback()
	schema, err := projectionSchema(ctx, tx, reg)
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
		if err := p.open(ctx, tx, opt, i, schema); err != nil {
			return res, err
		}
	}
	c := NewChecker()
	res.Events, err = stream(ctx, tx, c, parts, opt, 0)
	if b, ok := err.(*BrokenError); ok {
		res.Broken, res.Took = &b.Failure, time.Since(start)
		return res, nil
	}
	if err != nil {
		return res, err
	}
	res.Head = c.Report().Head.Position
	byName := map[string]*part{}
	for _, p := range parts {
		byName[p.name] = p
	}
	for _, t := range schema {
		if t.external != "" {
			continue
		}
		res.Tables = append(res.Tables, t.name)
		n, d, err := compareTable(ctx, tx, byName[t.src].conn, t)
		res.Rows += n
		if err != nil {
			return res, err
		}
		if d != nil {
			res.Diff, res.Took = d, time.Since(start)
			return res, nil
		}
	}
	res.OK, res.Took = true, time.Since(start)
	return res, nil
}

// compareTable walks the live and the rebuilt table side by side in rowid
// order (primary key order for a WITHOUT ROWID table) and returns the
// first difference.
func compareTable(ctx context.Context, live Querier, scratch *sql.Conn, t projTable) (int64, *DeepDiff, error) {
	pk, err := primaryKey(ctx, live, t.name)
	if err != nil {
		return 0, nil, err
	}
	order := "rowid"
	if !t.rowid {
		order = strings.Join(pk, ", ")
	}
	cols := t.cols
	sel := `SELECT ` + order + `, ` + strings.Join(cols, ", ") + ` FROM ` + quoteIdent(t.name) + ` ORDER BY ` + order
	nk := strings.Count(order, ",") + 1
	lr, err := live.QueryContext(ctx, sel)
	if err != nil {
		return 0, nil, fmt.Errorf("deep verify: read %s: %w", t.name, err)
	}
	defer lr.Close()
	sr, err := scratch.QueryContext(ctx, sel)
	if err != nil {
		return 0, nil, fmt.Errorf("deep verify: read rebuilt %s: %w", t.name, err)
	}
	defer sr.Close()
	next := func(r *sql.Rows) ([]any, error) {
		if !r.Next() {
			return nil, r.Err()
		}
		v := make([]any, nk+len(cols))
		p := make([]any, len(v))
		for i := range v {
			p[i] = &v[i]
		}
		return v, r.Scan(p...)
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = strings.Trim(strings.ReplaceAll(c, `""`, `"`), `"`)
	}
	keyOf := func(v []any) string {
		if t.rowid && len(pk) > 0 && !(len(pk) == 1 && pk[0] == "rowid") {
			var parts []string
			for _, k := range pk {
				for i, n := range names {
					if quoteIdent(n) == k {
						parts = append(parts, n+"="+show(v[nk+i]))
					}
				}
			}
			if len(parts) == len(pk) {
				return strings.Join(parts, ", ")
			}
		}
		if t.rowid {
			return "rowid=" + show(v[0])
		}
		var parts []string
		for i, k := range pk {
			parts = append(parts, strings.Trim(k, `"`)+"="+show(v[i]))
		}
		return strings.Join(parts, ", ")
	}
	var n int64
	l, lerr := next(lr)
	s, serr := next(sr)
	for {
		if lerr != nil || serr != nil {
			return n, nil, fmt.Errorf("deep verify: read %s: %w", t.name, firstErr(lerr, serr))
		}
		if l == nil && s == nil {
			return n, nil, nil
		}
		c := 0
		switch {
		case l == nil:
			c = 1
		case s == nil:
			c = -1
		default:
			c = compareKey(l[:nk], s[:nk])
		}
		switch {
		case c < 0:
			return n, &DeepDiff{Table: t.name, Key: keyOf(l), Live: "a row", Rebuilt: "(no such row)"}, nil
		case c > 0:
			return n, &DeepDiff{Table: t.name, Key: keyOf(s), Live: "(no such row)", Rebuilt: "a row"}, nil
		}
		n++
		for i := range cols {
			if !sameValue(l[nk+i], s[nk+i]) {
				return n, &DeepDiff{Table: t.name, Key: keyOf(l), Column: names[i], Live: show(l[nk+i]), Rebuilt: show(s[nk+i])}, nil
			}
		}
		l, lerr = next(lr)
		s, serr = next(sr)
	}
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// primaryKey lists the quoted primary key columns of table, in key order.
func primaryKey(ctx context.Context, q Querier, table string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk`, table)
	if err != nil {
		return nil, fmt.Errorf("deep verify: primary key of %s: %w", table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("deep verify: primary key of %s: %w", table, err)
		}
		out = append(out, quoteIdent(c))
	}
	return out, rows.Err()
}

// compareKey orders two keys as SQLite does for the types a key holds
// here: NULL < numbers < text < blobs.
func compareKey(a, b []any) int {
	for i := range a {
		if c := compareValue(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}

func rank(v any) int {
	switch v.(type) {
	case nil:
		return 0
	case int64, float64:
		return 1
	case string:
		return 2
	}
	return 3
}

func compareValue(a, b any) int {
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra - rb
	}
	switch x := a.(type) {
	case int64:
		switch y := b.(type) {
		case int64:
			return cmpOrdered(x, y)
		case float64:
			return cmpOrdered(float64(x), y)
		}
	case float64:
		switch y := b.(type) {
		case int64:
			return cmpOrdered(x, float64(y))
		case float64:
			return cmpOrdered(x, y)
		}
	case string:
		return strings.Compare(x, b.(string))
	case []byte:
		return bytes.Compare(x, b.([]byte))
	}
	return 0
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sameValue: the same SQLite type and value.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// show is a value for people: text quoted (cut at 80 characters), numbers
// as they are, blobs in hex, NULL as NULL.
func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		if utf8.RuneCountInString(x) > 80 {
			x = string([]rune(x)[:80]) + "…"
		}
		return strconv.Quote(x)
	case []byte:
		h := fmt.Sprintf("x'%x'", x)
		if len(h) > 83 {
			h = h[:80] + "…'"
		}
		return h
	}
	return fmt.Sprint(v)
}

// DeepCheck is one recorded deep verification.
type DeepCheck struct {
	RanAt   time.Time
	Head    int64
	OK      bool
	Problem string
	Took    time.Duration
}

// RecordDeepCheck keeps r, started at at, in the deep_checks table.
func RecordDeepCheck(ctx context.Context, q Querier, r DeepReport, at time.Time) error {
	ok := 0
	if r.OK {
		ok = 1
	}
	_, err := q.ExecContext(ctx, `INSERT INTO deep_checks (ran_at, head, ok, problem, took_ms) VALUES (?, ?, ?, ?, ?)`,
		at.UTC().Format(time.RFC3339), r.Head, ok, r.Problem(), r.Took.Milliseconds())
	if err != nil {
		return fmt.Errorf("record deep check: %w", err)
	}
	return nil
}

// LatestDeepCheck returns the last recorded deep verification, false when
// none ran (or the database predates the table).
func LatestDeepCheck(ctx context.Context, q Querier) (DeepCheck, bool, error) {
	var c DeepCheck
	var at string
	var ms int64
	err := q.QueryRowContext(ctx, `SELECT ran_at, head, ok, problem, took_ms FROM deep_checks ORDER BY id DESC LIMIT 1`).Scan(&at, &c.Head, &c.OK, &c.Problem, &ms)
	if err == sql.ErrNoRows || (err != nil && strings.Contains(err.Error(), "no such table")) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("latest deep check: %w", err)
	}
	c.RanAt, _ = time.Parse(time.RFC3339, at)
	c.Took = time.Duration(ms) * time.Millisecond
	return c, true, nil
}
