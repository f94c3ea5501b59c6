package ops

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"braid/internal/events"
)

// ReplicaHead is what a replica holds (read by internal/replica): its last
// event and when it was last written to.
type ReplicaHead struct {
	Position int64
	Hash     [32]byte
	Written  time.Time
	// At is the replica's event at the local head's position (nil when it
	// does not hold it); Next when the replica's event after it occurred.
	At   *[32]byte
	Next time.Time
}

// replication compares the replica's head with the local log: ok when the
// replica holds the head, or lacks only events younger than ReplicaWithin;
// warn when it lacks older ones; fail when it cannot be read, or when its
// head is not an event of this log.
func (d *Doctor) replication(ctx context.Context) Check {
	c := Check{Name: "replication"}
	if d.Replica == nil {
		c.Status, c.Message = Skip, "replication not configured (serve --replicate URL)"
		return c
	}
	where := "the replica"
	if d.ReplicaURL != "" {
		where += " at " + d.ReplicaURL
	}
	local, err := events.ReadHead(ctx, d.Read)
	if err != nil {
		c.Status, c.Message = Fail, err.Error()
		return c
	}
	r, err := d.Replica(ctx, local.Position)
	if err != nil {
		c.Status, c.Message = Fail, fmt.Sprintf("cannot read %s: %v", where, err)
		return c
	}
	written := ""
	if !r.Written.IsZero() {
		written = fmt.Sprintf(", last written %s ago", round(d.Now().Sub(r.Written)))
	}
	if r.Position > local.Position && d.Follower {
		return d.following(c, where, local, r, written)
	}
	if r.Position > local.Position {
		c.Status, c.Message = Fail, fmt.Sprintf("%s holds the log up to position %d, but this database ends at %d: it is not this database's replica, or this database is an older copy", where, r.Position, local.Position)
		return c
	}
	if r.Position > 0 {
		var hb []byte
		err := d.Read.QueryRowContext(ctx, `SELECT hash FROM events WHERE position = ?`, r.Position).Scan(&hb)
		if err != nil {
			c.Status, c.Message = Fail, fmt.Sprintf("read event %d: %v", r.Position, err)
			return c
		}
		var h [32]byte
		copy(h[:], hb)
		if h != r.Hash {
			c.Status, c.Message = Fail, fmt.Sprintf("%s holds a different event at position %d (hash %s, here %s): it is not a copy of this log", where, r.Position, events.Short(r.Hash), events.Short(h))
			return c
		}
	}
	behind := local.Position - r.Position
	if behind == 0 {
		c.Status, c.Message = OK, fmt.Sprintf("%s holds the whole log, up to position %d%s", where, r.Position, written)
		return c
	}
	var at string
	err = d.Read.QueryRowContext(ctx, `SELECT occurred_at FROM events WHERE position = ?`, r.Position+1).Scan(&at)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		c.Status, c.Message = Fail, fmt.Sprintf("read event %d: %v", r.Position+1, err)
		return c
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		c.Status, c.Message = Fail, fmt.Sprintf("event %d's time %q: %v", r.Position+1, at, err)
		return c
	}
	age := d.Now().Sub(t)
	c.Message = fmt.Sprintf("%s holds the log up to position %d of %d: %d %s behind, the oldest it lacks written %s ago%s", where, r.Position, local.Position, behind, plural(behind, "event", "events"), round(age), written)
	if age <= d.ReplicaWithin {
		c.Status, c.Message = OK, c.Message+fmt.Sprintf(" (within %s)", d.ReplicaWithin)
		return c
	}
	c.Status, c.Message = Warn, c.Message+fmt.Sprintf(": more than %s; is serve --replicate running and the replica reachable?", d.ReplicaWithin)
	return c
}

// following judges a follower's copy, which trails the replica: its head
// must be the replica's event at that position; it may lack the
// replica's newest events for up to ReplicaWithin.
func (d *Doctor) following(c Check, where string, local events.Head, r ReplicaHead, written string) Check {
	if local.Position > 0 && (r.At == nil || *r.At != local.Hash) {
		c.Status, c.Message = Fail, fmt.Sprintf("this follower's copy ends with an event (position %d) that %s does not hold: it is not a copy of this replica", local.Position, where)
		return c
	}
	behind := r.Position - local.Position
	age := d.Now().Sub(r.Next)
	c.Message = fmt.Sprintf("this follower's copy holds the log up to position %d of the %d %s holds: %d %s behind, the oldest it lacks written %s ago%s", local.Position, r.Position, where, behind, plural(behind, "event", "events"), round(age), written)
	if age <= d.ReplicaWithin {
		c.Status, c.Message = OK, c.Message+fmt.Sprintf(" (within %s)", d.ReplicaWithin)
		return c
	}
	c.Status, c.Message = Warn, c.Message+fmt.Sprintf(": more than %s; is serve --follow running?", d.ReplicaWithin)
	return c
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
