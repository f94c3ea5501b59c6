package ops

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"braid/internal/events"
	"braid/internal/tlog"
)

// Status of one check.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Check is one line of `web doctor`: what was checked, how it stands and
// why, in plain words.
type Check struct {
	Name    string
	Status  Status
	Message string
}

// Doctor checks a deployment from its database file and what lies beside
// it. Thresholds of zero take the defaults.
type Doctor struct {
	DBPath  string
	Read    events.Querier // the database, read-only
	KeyPath string         // the log's signing key
	// AnchorEvery is the anchoring schedule (serve --anchor-every): an
	// anchor older than twice that fails, older than it warns. 0: anchors
	// are reported but not judged.
	AnchorEvery time.Duration
	// VerifyWithin: a verify run older than this warns (default 24h).
	VerifyWithin time.Duration
	// ExportWithin: the last good scheduled export older than this fails
	// (default 48h); no export recorded at all only warns.
	ExportWithin time.Duration
	// Replica reads the replica's head and its event at position local
	// (nil: replication not configured); ReplicaURL names it in messages
	// (without secrets). Follower says the database is a follower's copy
	// (serve --follow), which trails the replica rather than leads it.
	Replica    func(ctx context.Context, local int64) (ReplicaHead, error)
	ReplicaURL string
	Follower   bool
	// ReplicaWithin: a replica lacking only events younger than this is
	// ok, older ones warn (default 1m).
	ReplicaWithin time.Duration
	Now           func() time.Time
}

// Run runs every check in order.
func (d *Doctor) Run(ctx context.Context) []Check {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.VerifyWithin == 0 {
		d.VerifyWithin = 24 * time.Hour
	}
	if d.ExportWithin == 0 {
		d.ExportWithin = 48 * time.Hour
	}
	if d.ReplicaWithin == 0 {
		d.ReplicaWithin = time.Minute
	}
	return []Check{d.disk(), d.wal(), d.integrity(ctx), d.key(), d.anchors(ctx), d.replication(ctx),
		d.verified(ctx), d.exported(ctx)}
}

func (d *Doctor) disk() Check {
	c := Check{Name: "disk"}
	dir := filepath.Dir(d.DBPath)
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		c.Status, c.Message = Fail, fmt.Sprintf("cannot read free space of %s: %v", dir, err)
		return c
	}
	free, total := st.Bavail*uint64(st.Bsize), st.Blocks*uint64(st.Bsize)
	pct := 100.0
	if total > 0 {
		pct = float64(free) / float64(total) * 100
	}
	c.Status = OK
	switch {
	case free < 64<<20 || pct < 2:
		c.Status = Fail
	case free < 1<<30 || pct < 10:
		c.Status = Warn
	}
	c.Message = fmt.Sprintf("%s free of %s (%.0f%%) where the database lives (%s)", bytes(free), bytes(total), pct, dir)
	if c.Status != OK {
		c.Message += ": a full disk stops every write"
	}
	return c
}

func (d *Doctor) wal() Check {
	c := Check{Name: "wal", Status: OK}
	fi, err := os.Stat(d.DBPath + "-wal")
	switch {
	case errors.Is(err, os.ErrNotExist):
		c.Message = "no write-ahead log beside the database (all checkpointed)"
		return c
	case err != nil:
		c.Status, c.Message = Fail, fmt.Sprintf("cannot read the write-ahead log: %v", err)
		return c
	}
	n := uint64(fi.Size())
	c.Message = fmt.Sprintf("write-ahead log is %s", bytes(n))
	switch {
	case n > 1<<30:
		c.Status, c.Message = Fail, c.Message+": checkpoints are not keeping up (a long-running reader holds them back)"
	case n > 64<<20:
		c.Status, c.Message = Warn, c.Message+": larger than usual; checkpoints may be held back by a long reader"
	}
	return c
}

func (d *Doctor) integrity(ctx context.Context) Check {
	c := Check{Name: "integrity"}
	rows, err := d.Read.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		c.Status, c.Message = Fail, fmt.Sprintf("quick_check could not run: %v", err)
		return c
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			c.Status, c.Message = Fail, fmt.Sprintf("quick_check: %v", err)
			return c
		}
		found = append(found, s)
	}
	if err := rows.Err(); err != nil {
		c.Status, c.Message = Fail, fmt.Sprintf("quick_check: %v", err)
		return c
	}
	if len(found) == 1 && found[0] == "ok" {
		c.Status, c.Message = OK, "SQLite quick_check found the database file sound"
		return c
	}
	if len(found) > 3 {
		found = append(found[:3], "…")
	}
	c.Status, c.Message = Fail, "SQLite quick_check found damage: "+strings.Join(found, "; ")
	return c
}

func (d *Doctor) key() Check {
	c := Check{Name: "log key"}
	k, err := tlog.ReadKey(d.KeyPath)
	if err != nil {
		c.Status, c.Message = Fail, fmt.Sprintf("%v: checkpoints cannot be signed (serve makes a key only where none exists, and a new key is a new log identity: restore the old one)", err)
		return c
	}
	c.Status, c.Message = OK, fmt.Sprintf("%s is present and readable (origin %s)", d.KeyPath, k.Origin)
	if fi, err := os.Stat(d.KeyPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		c.Status, c.Message = Warn, fmt.Sprintf("%s is readable by others (mode %o): it is a private key, chmod 600 it", d.KeyPath, fi.Mode().Perm())
	}
	return c
}

func (d *Doctor) anchors(ctx context.Context) Check {
	c := Check{Name: "anchors"}
	var at sql.NullString
	var n int64
	if err := d.Read.QueryRowContext(ctx, `SELECT COUNT(*), MAX(anchored_at) FROM anchors`).Scan(&n, &at); err != nil {
		c.Status, c.Message = Fail, fmt.Sprintf("cannot read anchors: %v", err)
		return c
	}
	if n == 0 {
		if d.AnchorEvery > 0 {
			c.Status, c.Message = Fail, fmt.Sprintf("never anchored, though anchoring every %s was expected", d.AnchorEvery)
		} else {
			c.Status, c.Message = Skip, "never anchored (pass --anchor-every to say how often it should be)"
		}
		return c
	}
	t, err := time.Parse(time.RFC3339Nano, at.String)
	if err != nil {
		c.Status, c.Message = Fail, fmt.Sprintf("last anchor's time %q: %v", at.String, err)
		return c
	}
	age := d.Now().Sub(t)
	c.Status, c.Message = OK, fmt.Sprintf("%d anchors, the last %s ago", n, round(age))
	switch {
	case d.AnchorEvery > 0 && age > 2*d.AnchorEvery:
		c.Status, c.Message = Fail, c.Message+fmt.Sprintf(": overdue (expected every %s); is the witness reachable?", d.AnchorEvery)
	case d.AnchorEvery > 0 && age > d.AnchorEvery:
		c.Status, c.Message = Warn, c.Message+fmt.Sprintf(": later than expected (every %s)", d.AnchorEvery)
	case d.AnchorEvery == 0:
		c.Message += " (pass --anchor-every to judge whether that is overdue)"
	}
	return c
}

func (d *Doctor) verified(ctx context.Context) Check {
	c := Check{Name: "verify"}
	r, err := Last(ctx, d.Read, KindVerify)
	switch {
	case errors.Is(err, ErrNoRun):
		c.Status, c.Message = Warn, "no verify run recorded: serve records one when its pages or /verify are visited"
		return c
	case err != nil:
		c.Status, c.Message = Fail, err.Error()
		return c
	}
	age := d.Now().Sub(r.At)
	if !r.OK {
		c.Status, c.Message = Fail, fmt.Sprintf("the last verify, %s ago, found the braid %s", round(age), r.Detail)
		return c
	}
	c.Status, c.Message = OK, fmt.Sprintf("the last verify, %s ago, found the braid intact up to position %d", round(age), r.Position)
	if age > d.VerifyWithin {
		c.Status, c.Message = Warn, c.Message+fmt.Sprintf("; that is longer than %s: run web verify, or open /verify", d.VerifyWithin)
	}
	return c
}

func (d *Doctor) exported(ctx context.Context) Check {
	c := Check{Name: "export"}
	r, err := Last(ctx, d.Read, KindExport)
	switch {
	case errors.Is(err, ErrNoRun):
		c.Status, c.Message = Warn, "no scheduled export recorded: serve --export-every 24h --export-dir DIR keeps verified copies"
		return c
	case err != nil:
		c.Status, c.Message = Fail, err.Error()
		return c
	}
	if r.OKAt.IsZero() {
		c.Status, c.Message = Fail, fmt.Sprintf("no scheduled export has succeeded; the last, %s ago, failed: %s", round(d.Now().Sub(r.At)), r.Detail)
		return c
	}
	age := d.Now().Sub(r.OKAt)
	c.Status, c.Message = OK, fmt.Sprintf("the last scheduled export was written and verified %s ago", round(age))
	if r.OK {
		c.Message += " (" + r.Detail + ")"
	}
	switch {
	case age > d.ExportWithin:
		c.Status, c.Message = Fail, c.Message+fmt.Sprintf(": older than %s", d.ExportWithin)
	case !r.OK:
		c.Status, c.Message = Warn, c.Message+"; the latest attempt failed: "+r.Detail
	}
	return c
}

func round(d time.Duration) time.Duration {
	if d < time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Minute)
}

func bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
