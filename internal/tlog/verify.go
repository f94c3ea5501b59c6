package tlog

import (
	"context"
	"database/sql"
	"fmt"

	xtlog "golang.org/x/mod/sumdb/tlog"
)

// Check is what Verify found.
type Check struct {
	Size       int64 // leaves checked: the events up to the position asked for
	Root       Hash  // recomputed from the braid hashes
	StoredRoot Hash  // x/mod tlog.TreeHash over the stored hashes
	OK         bool
	Missing    bool  // no stored hashes at all: a database from before the tree
	Index      int64 // first wrong stored index, -1 when none
	Position   int64 // the event whose leaf that stored hash was made with, 0 when none
	Problem    string
}

// Verify recomputes the tree of the events at positions 1..size from their
// braid hashes and compares every stored hash with it, in one read
// transaction, then computes the root from the stored hashes alone. The
// first stored hash that differs (or is missing) is named.
func Verify(ctx context.Context, db *sql.DB, size int64) (Check, error) {
	c := Check{Size: size, Index: -1}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return c, fmt.Errorf("tlog verify: %w", err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'tlog_hashes'`).Scan(&n); err != nil {
		return c, fmt.Errorf("tlog verify: %w", err)
	}
	if n > 0 && size > 0 {
		// An empty table beside a log is a tree not built yet (the log was
		// written by an older release), not a wrong one.
		err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM tlog_hashes LIMIT 1)`).Scan(&n)
		if err != nil {
			return c, fmt.Errorf("tlog verify: %w", err)
		}
	}
	if n == 0 {
		c.Missing, c.OK, c.Root, c.StoredRoot = true, true, EmptyRoot, EmptyRoot
		c.Problem = "no transparency tree in this database yet (start `web serve` once, or run `web replay`)"
		return c, nil
	}
	stored, err := tx.QueryContext(ctx, `SELECT id, hash FROM tlog_hashes WHERE id < ? ORDER BY id`, xtlog.StoredHashIndex(0, size))
	if err != nil {
		return c, fmt.Errorf("tlog verify: %w", err)
	}
	defer stored.Close()
	var f frontier
	var want []Hash
	var next int64 // next stored index expected
	fail := func(pos int64, format string, args ...any) {
		if c.Index < 0 {
			c.Index, c.Position, c.Problem = next, pos, fmt.Sprintf(format, args...)
		}
	}
	for at := int64(0); at < size; {
		hashes, err := braidHashes(ctx, tx, at, 8192)
		if err != nil {
			return c, fmt.Errorf("tlog verify: %w", err)
		}
		if len(hashes) == 0 {
			return c, fmt.Errorf("tlog verify: the log ends at position %d, want %d", at, size)
		}
		for _, h := range hashes {
			if at == size {
				break
			}
			at++
			want = f.push(LeafHash(h), want[:0])
			if c.Index >= 0 {
				continue
			}
			for _, w := range want {
				if !stored.Next() {
					if err := stored.Err(); err != nil {
						return c, fmt.Errorf("tlog verify: %w", err)
					}
					fail(at, "stored hash %d (of the leaf for position %d) is missing", next, at)
					break
				}
				var id int64
				var b []byte
				if err := stored.Scan(&id, &b); err != nil {
					return c, fmt.Errorf("tlog verify: %w", err)
				}
				if id != next {
					fail(at, "stored hash %d (of the leaf for position %d) is missing", next, at)
					break
				}
				if len(b) != xtlog.HashSize || Hash(b) != w {
					fail(at, "stored hash %d (of the leaf for position %d) differs from the one recomputed from the braid", next, at)
					break
				}
				next++
			}
		}
	}
	c.Root = f.root()
	if c.Index >= 0 {
		return c, nil
	}
	c.StoredRoot, err = xtlog.TreeHash(size, Reader{Ctx: ctx, Q: tx})
	if err != nil {
		c.Problem = fmt.Sprintf("root from the stored hashes: %v", err)
		return c, nil
	}
	if c.StoredRoot != c.Root {
		c.Problem = "the root from the stored hashes differs from the one recomputed from the braid"
		return c, nil
	}
	c.OK = true
	return c, nil
}
