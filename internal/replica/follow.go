package replica

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"

	"braid/internal/errs"
	"braid/internal/events"
)

// Follower keeps a read-only copy of a replica up to date. It restores the
// replica once, then polls it for new transactions (Litestream's LTX
// files) and writes their pages into the copy while holding SQLite's
// exclusive lock, taken through SQLite on a connection of its own, so
// readers in this process wait for a whole transaction and then see it.
// (Litestream's own follow mode locks the file with fcntl on a descriptor
// SQLite does not know about: in the same process that would release the
// readers' locks, since POSIX locks belong to the process.)
type Follower struct {
	client litestream.ReplicaClient
	path   string
	log    *slog.Logger
	every  time.Duration

	f        *os.File // kept open for the follower's life: closing it would drop the process's locks
	lock     *sql.DB  // one connection, for the exclusive lock and the head
	pageSize uint32
	txid     ltx.TXID

	mu       sync.Mutex
	position int64
	caughtUp time.Time // when the copy last held everything the replica held
	err      error

	cancel context.CancelFunc
	done   chan struct{}
}

// Follow restores the replica at url into path (which must not exist) and
// keeps it up to date every interval (default 1s) until Close.
func Follow(ctx context.Context, url, path string, every time.Duration, log *slog.Logger) (*Follower, error) {
	if every <= 0 {
		every = time.Second
	}
	if _, err := os.Lstat(path); err == nil {
		// A follower's own earlier copy (it leaves a marker) is restored
		// afresh; any other file is refused, never overwritten.
		if _, err := os.Stat(path + "-follower"); err != nil {
			return nil, errs.E(errs.Conflict, "%s already exists and is not a follower's copy: a follower restores into a new path", path)
		}
		for _, p := range []string{path, path + "-journal", path + "-follower"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
		}
	}
	client, err := NewClient(ctx, url)
	if err != nil {
		return nil, err
	}
	fl := &Follower{client: client, path: path, log: log, every: every, done: make(chan struct{})}
	if fl.txid, err = maxTXID(ctx, client); err != nil {
		return nil, err
	}
	if err := restore(ctx, client, url, path, time.Time{}, fl.txid); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path+"-follower", []byte("a read-only copy kept by web serve --follow "+redact(url)+"\n"), 0o644); err != nil {
		return nil, err
	}
	if fl.f, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
		return nil, err
	}
	var hdr [100]byte
	if _, err := fl.f.ReadAt(hdr[:], 0); err != nil {
		fl.f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	fl.pageSize = uint32(binary.BigEndian.Uint16(hdr[16:18]))
	if fl.pageSize == 1 {
		fl.pageSize = 65536
	}
	// The copy is never written by SQLite, so it is opened in rollback mode
	// (no -wal, no -shm): readers then take SQLite's file locks, which the
	// follower's exclusive lock excludes while it writes.
	if err := fl.patchHeader(); err != nil {
		fl.f.Close()
		return nil, err
	}
	fl.lock, err = sql.Open("sqlite", events.FollowerDSN(path, false))
	if err != nil {
		fl.f.Close()
		return nil, err
	}
	fl.lock.SetMaxOpenConns(1)
	if err := fl.readHead(ctx); err != nil {
		fl.lock.Close()
		fl.f.Close()
		return nil, err
	}
	fl.caughtUp = time.Now()
	lctx, cancel := context.WithCancel(context.Background())
	fl.cancel = cancel
	go fl.loop(lctx)
	return fl, nil
}

// Path is the copy's file.
func (fl *Follower) Path() string { return fl.path }

// Status returns the copy's head position, how long since it last held
// everything the replica holds (0 right after a poll that found nothing
// new), and the last failure to catch up.
func (fl *Follower) Status() (position int64, lag time.Duration, err error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.position, time.Since(fl.caughtUp), fl.err
}

// Close stops following; close every reader of the copy first.
func (fl *Follower) Close() error {
	fl.cancel()
	<-fl.done
	err := fl.lock.Close()
	fl.f.Close()
	return err
}

func (fl *Follower) loop(ctx context.Context) {
	defer close(fl.done)
	t := time.NewTicker(fl.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		err := fl.catchUp(ctx)
		if ctx.Err() != nil {
			return
		}
		fl.mu.Lock()
		if err != nil {
			if fl.err == nil {
				fl.log.Error("follower cannot catch up", slog.Any("err", err))
			}
			fl.err = err
		} else {
			fl.err = nil
			fl.caughtUp = start
		}
		fl.mu.Unlock()
	}
}

// catchUp applies every transaction the replica holds beyond the copy's.
func (fl *Follower) catchUp(ctx context.Context) error {
	for {
		info, err := fl.next(ctx)
		if err != nil || info == nil {
			return err
		}
		if err := fl.apply(ctx, info); err != nil {
			return err
		}
	}
}

// next finds the file that takes the copy past its transaction: the next
// level-0 file, or when those are gone (compacted away) the widest file of
// the lowest level that covers the next transaction.
func (fl *Follower) next(ctx context.Context) (*ltx.FileInfo, error) {
	for level := 0; level <= litestream.SnapshotLevel; level++ {
		seek := ltx.TXID(0)
		if level == 0 {
			seek = fl.txid + 1
		}
		itr, err := fl.client.LTXFiles(ctx, level, seek, false)
		if err != nil {
			return nil, err
		}
		var best *ltx.FileInfo
		for itr.Next() {
			it := itr.Item()
			if it.MinTXID <= fl.txid+1 && it.MaxTXID > fl.txid && (best == nil || it.MaxTXID > best.MaxTXID) {
				c := *it
				best = &c
			}
			if level == 0 && best != nil {
				break
			}
		}
		err = itr.Err()
		itr.Close()
		if err != nil {
			return nil, err
		}
		if best != nil {
			return best, nil
		}
	}
	return nil, nil
}

type page struct {
	pgno uint32
	data []byte
}

// apply reads one LTX file whole (its checksum checked before anything is
// written), then writes its pages into the copy under SQLite's exclusive
// lock.
func (fl *Follower) apply(ctx context.Context, info *ltx.FileInfo) error {
	rc, err := fl.client.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
	if err != nil {
		return fmt.Errorf("open ltx file: %w", err)
	}
	defer rc.Close()
	dec := ltx.NewDecoder(rc)
	if err := dec.DecodeHeader(); err != nil {
		return fmt.Errorf("ltx %s-%s: %w", info.MinTXID, info.MaxTXID, err)
	}
	hdr := dec.Header()
	if hdr.PageSize != fl.pageSize {
		return errs.E(errs.Invalid, "ltx %s-%s: page size %d, the copy's is %d", info.MinTXID, info.MaxTXID, hdr.PageSize, fl.pageSize)
	}
	var pages []page
	for {
		var ph ltx.PageHeader
		data := make([]byte, fl.pageSize)
		if err := dec.DecodePage(&ph, data); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("ltx %s-%s: %w", info.MinTXID, info.MaxTXID, err)
		}
		pages = append(pages, page{ph.Pgno, data})
	}
	if err := dec.Close(); err != nil {
		return fmt.Errorf("ltx %s-%s: %w", info.MinTXID, info.MaxTXID, err)
	}

	conn, err := fl.lock.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		return fmt.Errorf("lock the copy: %w", err)
	}
	werr := fl.write(pages, hdr.Commit)
	if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil && werr == nil {
		werr = err
	}
	if werr != nil {
		return werr
	}
	fl.txid = info.MaxTXID
	var h events.Head
	if h, err = events.ReadHead(ctx, conn); err != nil {
		return err
	}
	fl.mu.Lock()
	fl.position = h.Position
	fl.mu.Unlock()
	return nil
}

func (fl *Follower) write(pages []page, commit uint32) error {
	for _, p := range pages {
		if p.pgno == 1 {
			p.data[18], p.data[19] = 1, 1
		}
		if _, err := fl.f.WriteAt(p.data, int64(p.pgno-1)*int64(fl.pageSize)); err != nil {
			return fmt.Errorf("write page %d: %w", p.pgno, err)
		}
	}
	if commit > 0 {
		if err := fl.f.Truncate(int64(commit) * int64(fl.pageSize)); err != nil {
			return err
		}
	}
	// A new change counter tells every reader's page cache that the file
	// changed (a WAL-mode primary does not bump it on each commit).
	var ctr [4]byte
	rand.Read(ctr[:])
	if _, err := fl.f.WriteAt(ctr[:], 24); err != nil {
		return err
	}
	return fl.f.Sync()
}

// patchHeader puts the restored copy in rollback mode with a fresh change
// counter.
func (fl *Follower) patchHeader() error {
	if _, err := fl.f.WriteAt([]byte{1, 1}, 18); err != nil {
		return err
	}
	var ctr [4]byte
	rand.Read(ctr[:])
	if _, err := fl.f.WriteAt(ctr[:], 24); err != nil {
		return err
	}
	return fl.f.Sync()
}

func (fl *Follower) readHead(ctx context.Context) error {
	h, err := events.ReadHead(ctx, fl.lock)
	if err != nil {
		return err
	}
	fl.mu.Lock()
	fl.position = h.Position
	fl.mu.Unlock()
	return nil
}

// maxTXID is the last transaction the replica holds, over every level.
func maxTXID(ctx context.Context, c litestream.ReplicaClient) (ltx.TXID, error) {
	m, _, err := newest(ctx, c)
	return m, err
}

// newest is the last transaction the replica holds, over every level, and
// when the newest of its files was written.
func newest(ctx context.Context, c litestream.ReplicaClient) (ltx.TXID, time.Time, error) {
	var m ltx.TXID
	var at time.Time
	for level := 0; level <= litestream.SnapshotLevel; level++ {
		itr, err := c.LTXFiles(ctx, level, 0, false)
		if err != nil {
			return 0, time.Time{}, err
		}
		for itr.Next() {
			it := itr.Item()
			m = max(m, it.MaxTXID)
			if it.CreatedAt.After(at) {
				at = it.CreatedAt
			}
		}
		err = itr.Err()
		itr.Close()
		if err != nil {
			return 0, time.Time{}, err
		}
	}
	if m == 0 {
		return 0, time.Time{}, errs.E(errs.NotFound, "the replica holds no transactions")
	}
	return m, at, nil
}
