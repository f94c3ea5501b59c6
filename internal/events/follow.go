package events

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
)

// FollowerDSN is the DSN of a connection to a follower's copy (see
// internal/replica): the file as it is, in whatever journal mode its
// header says, with SQLite's own locking; queries only when readOnly.
func FollowerDSN(path string, readOnly bool) string {
	q := url.Values{}
	if readOnly {
		q.Set("mode", "ro")
		q.Add("_pragma", "query_only(1)")
	}
	q.Add("_pragma", "busy_timeout(10000)")
	return fileURI(path) + "?" + q.Encode()
}

// OpenFollower opens a follower's copy for reading: no migration, no
// writer, and (unlike OpenReadOnly) never immutable, since the follower
// changes the file under SQLite's locks and readers must see each change.
func OpenFollower(ctx context.Context, path string) (*DB, error) {
	r, err := sql.Open("sqlite", FollowerDSN(path, true))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	if _, err := ReadHead(ctx, r); err != nil {
		r.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &DB{Path: path, Read: r}, nil
}
