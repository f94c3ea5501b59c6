// Package replica keeps copies of the database elsewhere with Litestream:
// continuous replication from a serving primary (Replicator), restore of a
// replica into a new file (Restore), and a read-only follower that keeps
// catching up from one (Follower). Litestream runs embedded, as a library:
// one process, one lock on the file, and its position readable in memory.
package replica

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/benbjohnson/litestream"
	_ "github.com/benbjohnson/litestream/file" // file:// replicas
	_ "github.com/benbjohnson/litestream/s3"   // s3:// replicas (Tigris, MinIO, AWS)
	"github.com/superfly/ltx"

	"braid/internal/errs"
)

// NewClient returns the replica client for a URL: file:///path or
// s3://bucket/path?endpoint=…&region=… (credentials from AWS_ACCESS_KEY_ID
// and AWS_SECRET_ACCESS_KEY, read by Litestream).
func NewClient(ctx context.Context, rawURL string) (litestream.ReplicaClient, error) {
	if !strings.HasPrefix(rawURL, "file://") && !strings.HasPrefix(rawURL, "s3://") {
		return nil, errs.E(errs.Invalid, "replica URL %q: want file:///path or s3://bucket/path?endpoint=…", rawURL)
	}
	c, err := litestream.NewReplicaClientFromURL(rawURL)
	if err != nil {
		return nil, errs.E(errs.Invalid, "replica URL %q: %v", rawURL, err)
	}
	if err := c.Init(ctx); err != nil {
		return nil, fmt.Errorf("replica %s: %w", redact(rawURL), err)
	}
	return c, nil
}

// redact drops the query of a URL (it may carry an endpoint's secrets).
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// Replicator ships every committed transaction of a live database to a
// replica, and knows which log position the replica holds.
type Replicator struct {
	store *litestream.Store
	ldb   *litestream.DB
	rep   *litestream.Replica
	head  func(context.Context) (int64, error)
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	marks      []mark // local transactions not yet on the replica, oldest first
	replicated int64  // the last log position the replica is known to hold
	err        error  // the last failure, cleared by the next success

	cancel context.CancelFunc
	done   chan struct{}
}

// mark says: every event up to position is in transactions up to txid.
type mark struct {
	txid     uint64
	position int64
	at       time.Time
}

// Options tune a Replicator; the zero value is what serve uses.
type Options struct {
	// Every is how often the replica is brought up to date (default 1s).
	Every time.Duration
	// Compaction, when set, replaces Litestream's schedule (tests use it
	// to see level-0 files compacted and pruned in seconds).
	Compaction *Compaction
}

// Compaction is how often the replica's files are merged into the next
// level, and how long level-0 files are kept once merged.
type Compaction struct {
	L1, L2, Snapshot time.Duration
	L0Retention      time.Duration
}

// Start replicates the database at path to the replica at url. head
// returns the log's last committed position; it is read before each
// sync, so a position is called replicated only once a transaction that
// contains it is on the replica.
func Start(ctx context.Context, path, url string, head func(context.Context) (int64, error), log *slog.Logger, opt Options) (*Replicator, error) {
	client, err := NewClient(ctx, url)
	if err != nil {
		return nil, err
	}
	if opt.Every <= 0 {
		opt.Every = time.Second
	}
	ldb := litestream.NewDB(path)
	ldb.SetLogger(log.With(slog.String("component", "litestream")))
	ldb.MonitorInterval = opt.Every
	rep := litestream.NewReplicaWithClient(ldb, client)
	rep.SyncInterval = opt.Every
	ldb.Replica = rep
	c := Compaction{L1: 30 * time.Second, L2: 5 * time.Minute}
	if opt.Compaction != nil {
		c = *opt.Compaction
	}
	store := litestream.NewStore([]*litestream.DB{ldb}, litestream.CompactionLevels{
		{Level: 0},
		{Level: 1, Interval: c.L1},
		{Level: 2, Interval: c.L2},
	})
	if c.Snapshot > 0 {
		store.SnapshotInterval = c.Snapshot
	}
	if c.L0Retention > 0 {
		store.SetL0Retention(c.L0Retention)
		store.L0RetentionCheckInterval = min(c.L0Retention, litestream.DefaultL0RetentionCheckInterval)
	}
	if err := store.Open(ctx); err != nil {
		return nil, fmt.Errorf("start replication to %s: %w", redact(url), err)
	}
	r := &Replicator{store: store, ldb: ldb, rep: rep, head: head, log: log, every: opt.Every, done: make(chan struct{})}
	lctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.loop(lctx)
	return r, nil
}

func (r *Replicator) loop(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.every / 2)
	defer t.Stop()
	for {
		r.observe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// observe reads the head, has Litestream take the WAL up to at least that
// transaction, then moves the replicated position up to every mark the
// replica has reached.
func (r *Replicator) observe(ctx context.Context) {
	h, err := r.head(ctx)
	if err == nil {
		err = r.ldb.Sync(ctx)
	}
	var local ltx.Pos
	if err == nil {
		local, err = r.ldb.Pos()
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			r.err = err
		}
		return
	}
	r.err = nil
	if n := len(r.marks); h > r.replicated && (n == 0 || h > r.marks[n-1].position) {
		r.marks = append(r.marks, mark{txid: uint64(local.TXID), position: h, at: now})
	}
	remote := uint64(r.rep.Pos().TXID)
	i := 0
	for ; i < len(r.marks) && r.marks[i].txid <= remote; i++ {
		r.replicated = max(r.replicated, r.marks[i].position)
	}
	r.marks = r.marks[i:]
}

// stalled is how long a write may wait for the replica before Status
// calls it a failure.
const stalled = 30 * time.Second

// Status returns the last log position the replica holds, how long the
// oldest write it does not yet hold has waited (0 when it holds the head),
// and the last failure to replicate, if the latest attempt failed.
func (r *Replicator) Status() (position int64, lag time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.marks) > 0 {
		lag = time.Since(r.marks[0].at)
	}
	if err = r.err; err == nil && lag > stalled {
		// Uploads fail quietly inside Litestream (it logs and retries):
		// a replica that takes nothing for this long is a failure.
		err = fmt.Errorf("the replica has taken nothing new for %s", lag.Round(time.Second))
	}
	return r.replicated, lag, err
}

// Sync ships everything committed so far and waits for the replica to
// hold it.
func (r *Replicator) Sync(ctx context.Context) error {
	if err := r.ldb.SyncAndWait(ctx); err != nil {
		return err
	}
	if err := r.rep.Sync(ctx); err != nil {
		return err
	}
	r.observe(ctx)
	return nil
}

// Close ships what is left, then stops. Call it before the database closes.
func (r *Replicator) Close(ctx context.Context) error {
	r.cancel()
	<-r.done
	return r.store.Close(ctx)
}
