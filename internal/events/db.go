package events

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"braid/internal/errs"
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
// disk), a busy timeout, secure_delete and immediate transactions.
func DSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	// An erased payload's bytes are zeroed in the pages that held them,
	// not just unlinked (see SecureDelete).
	q.Add("_pragma", "secure_delete(1)")
	q.Set("_txlock", "immediate")
	return fileURI(path) + "?" + q.Encode()
}

// fileURI returns path as an SQLite URI filename (https://sqlite.org/uri.html):
// every byte but letters, digits and "/._~-" is %-escaped, so '?', '#' and
// '%' in a name are part of the name and not the start of a query, a
// fragment or an escape. (The driver takes the first '?' of the DSN as the
// start of its own parameters and hands the whole URI to SQLite, which
// decodes %HH in the path.) An absolute path gets an empty authority
// ("file:///…"), so a path beginning with "//" is never read as a host.
func fileURI(path string) string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(path)+16)
	b = append(b, "file:"...)
	if strings.HasPrefix(path, "/") {
		b = append(b, "//"...)
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("/._~-", c) >= 0:
			b = append(b, c)
		default:
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

// readDSN is the DSN for the reader pool: the same file, queries only.
func readDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "query_only(1)")
	q.Add("_pragma", "mmap_size(1073741824)")
	return fileURI(path) + "?" + q.Encode()
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

// OpenReadOnly opens the database at path for reading only: it runs no
// migration and never creates or changes a file, so a command that only
// reads (verify, export) can run on a copy, beside a live server, or on a
// read-only file system. Only Read is set in the DB it returns. A file that
// is not a Braid database (zero bytes, not SQLite, no events table) is an
// invalid error saying so.
//
// How it opens depends on the write-ahead log beside the file. With a
// PATH-wal (a writer has the database open, or stopped without cleaning up)
// it opens with SQLite's mode=ro, which reads the log and the -shm that are
// already there. With none, every committed write is in the file itself,
// and SQLite's mode=ro would create an empty -wal and -shm and leave them
// behind; it opens the file as immutable instead, which creates nothing. (A
// writer that starts during the read and checkpoints more than a thousand
// pages into the file may make that read fail; it never makes it pass.) If
// mode=ro cannot open the file because the -shm cannot be created (a
// read-only file system), it falls back to immutable when the -wal is empty.
func OpenReadOnly(ctx context.Context, path string) (*DB, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, errs.E(errs.NotFound, "no database at %s: %v", path, errors.Unwrap(err))
	}
	if !st.Mode().IsRegular() {
		return nil, errs.E(errs.Invalid, "%s is not a Braid database (not a file)", path)
	}
	if st.Size() == 0 {
		// SQLite would open it as an empty database; say what it is instead.
		return nil, errs.E(errs.Invalid, "%s is not a Braid database (no events table)", path)
	}
	wal, werr := os.Stat(path + "-wal")
	r, err := openReadOnly(ctx, path, werr != nil)
	if err != nil && errs.Code(err) != errs.Invalid && werr == nil {
		if wal.Size() > 0 {
			return nil, fmt.Errorf("open %s read-only: %w (%s-wal holds writes that only a writable -shm lets it read)", path, err, path)
		}
		var ierr error
		if r, ierr = openReadOnly(ctx, path, true); ierr != nil {
			return nil, fmt.Errorf("open %s read-only: %w", path, err)
		}
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return &DB{Path: path, Read: r}, nil
}

// openReadOnly opens a pool of read-only connections on path and checks
// that it holds Braid's log.
func openReadOnly(ctx context.Context, path string, immutable bool) (*sql.DB, error) {
	q := url.Values{}
	q.Set("mode", "ro")
	if immutable {
		q.Set("immutable", "1")
	}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", fileURI(path)+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	var n int
	err = r.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'`).Scan(&n)
	var se *sqlite.Error
	switch {
	case errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_NOTADB:
		err = errs.E(errs.Invalid, "%s is not a Braid database (not an SQLite file)", path)
	case err == nil && n == 0:
		err = errs.E(errs.Invalid, "%s is not a Braid database (no events table)", path)
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	err = r.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'payloads'`).Scan(&n)
	if err != nil || n > 0 {
		if err != nil {
			r.Close()
		}
		return r, err
	}
	// A log from before braid v2, read as it is (see legacyConnector).
	r.Close()
	q.Del("_pragma")
	q.Add("_pragma", "busy_timeout(10000)")
	r = sql.OpenDB(legacyConnector{fileURI(path) + "?" + q.Encode()})
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	return r, nil
}

// Close closes the pools that are open (a read-only DB has only Read).
func (db *DB) Close() error {
	err1 := db.Read.Close()
	if db.Write == nil {
		return err1
	}
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

// legacyConnector opens read-only connections on a database made before
// braid v2 (no payloads table, no format or commitment column), for
// reading an archived log as it is: each connection first creates, in its
// own temp schema, a view named events that adds format 1 and a NULL
// commitment, and an empty payloads table, so every query of this package
// reads it unchanged; then it turns query_only on. The file is not
// touched: temp objects live in the connection's memory.
type legacyConnector struct{ dsn string }

func (c legacyConnector) Driver() driver.Driver { return &sqlite.Driver{} }

func (c legacyConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := (&sqlite.Driver{}).Open(c.dsn)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, errors.New("sqlite connection cannot exec")
	}
	for _, s := range []string{
		`CREATE TEMP VIEW events AS SELECT *, 1 AS format, NULL AS commitment FROM main.events`,
		`CREATE TEMP TABLE payloads (position INTEGER PRIMARY KEY, salt BLOB, data TEXT NOT NULL, erased_by INTEGER)`,
		`PRAGMA query_only = 1`,
	} {
		if _, err := ex.ExecContext(ctx, s, nil); err != nil {
			conn.Close()
			return nil, fmt.Errorf("read a pre-v2 log: %w", err)
		}
	}
	return conn, nil
}
