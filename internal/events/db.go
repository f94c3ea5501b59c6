package events

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"net/url"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
)

// DB is the database: one connection for the writer and a pool for readers.
type DB struct {
	Path  string
	Write *sql.DB // exactly one connection, owned by the Writer
	Read  *sql.DB // WAL readers
	// Aux may write tables that live outside the log on purpose (sessions);
	// it waits its turn behind the writer's short transactions.
	Aux *sql.DB
}

// DSN returns the modernc DSN for the write connection, with Braid's
// per-connection pragmas: WAL, synchronous=FULL (an acknowledged event is on
// disk), a busy timeout and immediate transactions.
func DSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// readDSN is the DSN for the reader pool: the same file, queries only.
func readDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "query_only(1)")
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database at path and applies every
// migration in migrations.
func Open(ctx context.Context, path string, migrations fs.FS) (*DB, error) {
	w, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if migrations != nil {
		p, err := goose.NewProvider(goose.DialectSQLite3, w, migrations)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("migrations: %w", err)
		}
		if _, err := p.Up(ctx); err != nil {
			w.Close()
			return nil, fmt.Errorf("migrate %s: %w", path, err)
		}
	}
	r, err := sql.Open("sqlite", readDSN(path))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	a, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	a.SetMaxOpenConns(2)
	return &DB{Path: path, Write: w, Read: r, Aux: a}, nil
}

// Close closes both pools.
func (db *DB) Close() error {
	err1 := db.Read.Close()
	db.Aux.Close()
	err2 := db.Write.Close()
	if err1 != nil {
		return err1
	}
	return err2
}

// Querier is what projections and queries need: *sql.DB, *sql.Tx and
// *sql.Conn all satisfy it.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
