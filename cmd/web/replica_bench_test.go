package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"braid/internal/events"
	"braid/internal/replica"
	"braid/internal/tickets"
)

// BenchmarkReplicatedAppend: durable ticket commands through the real
// writer from 64 goroutines, with replication off, to a file:// replica
// and to an S3 server on 127.0.0.1 (gofakes3). Reports events/s.
//
//	go test -run '^$' -bench BenchmarkReplicatedAppend -benchtime 20000x -count 3 ./cmd/web
func BenchmarkReplicatedAppend(b *testing.B) {
	for _, mode := range []string{"off", "file", "s3"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			a, err := openApp(ctx, filepath.Join(dir, "braid.db"), testLogger())
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			var rep *replica.Replicator
			switch mode {
			case "file":
				rep, err = replica.Start(ctx, a.db.Path, "file://"+filepath.Join(dir, "replica"), func(context.Context) (int64, error) { return a.writer.Head().Position, nil }, testLogger(), replica.Options{})
			case "s3":
				rep, err = replica.Start(ctx, a.db.Path, fakeS3(b, "bench"), func(context.Context) (int64, error) { return a.writer.Head().Position, nil }, testLogger(), replica.Options{})
			}
			if err != nil {
				b.Fatal(err)
			}
			tix := tickets.NewService(a.writer, a.reg, a.types.tickets)
			var next atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Value
			b.ResetTimer()
			start := time.Now()
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						if _, err := tix.Open(ctx, "bench", tickets.Draft{Title: fmt.Sprintf("ticket %d", i)}, ""); err != nil {
							failed.Store(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			took := time.Since(start)
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/took.Seconds(), "events/s")
			if rep != nil {
				s := time.Now()
				if err := rep.Sync(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(s).Seconds(), "s-final-sync")
				if err := rep.Close(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRestore: `web restore` (Litestream restore, then verify of the
// braid and the tree) of a log of BRAID_BENCH_RESTORE_EVENTS events
// (default 10000; 1000000 for the figure in the README) from a file://
// replica. The log (n tickets opened through the writer) is seeded once
// and kept under os.TempDir().
//
//	BRAID_BENCH_RESTORE_EVENTS=1000000 go test -run '^$' -bench BenchmarkRestore -benchtime 1x ./cmd/web
func BenchmarkRestore(b *testing.B) {
	n := 10000
	if v := os.Getenv("BRAID_BENCH_RESTORE_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	src := filepath.Join(os.TempDir(), fmt.Sprintf("braid-restore-%d.db", n))
	if _, err := os.Stat(src); err != nil {
		s := time.Now()
		if err := seedTickets(src+".partial", n); err != nil {
			b.Fatal(err)
		}
		os.Remove(src + ".partial-wal")
		os.Remove(src + ".partial-shm")
		if err := os.Rename(src+".partial", src); err != nil {
			b.Fatal(err)
		}
		b.Logf("seeded %d events in %s, kept at %s", n, time.Since(s).Round(time.Millisecond), src)
	}
	dir := b.TempDir()
	work := filepath.Join(dir, "primary.db")
	if err := copyFile(work, src); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(work)
	if err != nil {
		b.Fatal(err)
	}
	size := st.Size()
	rurl := "file://" + filepath.Join(dir, "replica")
	ctx := context.Background()
	s := time.Now()
	r, err := replica.Start(ctx, work, rurl, func(context.Context) (int64, error) { return 0, nil }, testLogger(), replica.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("first replication of %d events (%d MB): %s", n, size>>20, time.Since(s).Round(time.Millisecond))
	b.ResetTimer()
	for i := range b.N {
		out := filepath.Join(dir, fmt.Sprintf("restored-%d.db", i))
		s := time.Now()
		if code, stdout, stderr := runWeb(b, "restore", rurl, "--db", out); code != 0 {
			b.Fatalf("restore: exit %d %s%s", code, stdout, stderr)
		}
		b.ReportMetric(time.Since(s).Seconds(), "s/restore")
		os.Remove(out)
	}
}

// seedTickets opens n tickets through the real writer: commands of up to
// 2,000 tickets each (one ticket_opened event and its projection row per
// ticket), from 2 goroutines so that the next command is decided while one
// commits. About 20× faster than one command a ticket (1M in minutes, not
// half an hour); the log is the same kind of log.
func seedTickets(path string, n int) error {
	ctx := context.Background()
	a, err := openApp(ctx, path, testLogger())
	if err != nil {
		return err
	}
	tix := tickets.NewService(a.writer, a.reg, a.types.tickets)
	const per = 2000
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := next.Add(per) - per
				if from >= int64(n) {
					return
				}
				to := min(from+per, int64(n))
				_, err := a.writer.Do(ctx, events.Command{Actor: "seed", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
					var id int64
					if err := tx.Q().QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM tickets`).Scan(&id); err != nil {
						return nil, err
					}
					changes := make([]events.Change, 0, to-from)
					for i := from; i < to; i++ {
						evs, err := tix.Types.Open(tickets.Draft{Title: fmt.Sprintf("seeded ticket %d", i), Body: "steps:\n1. open\n2. see it fail"})
						if err != nil {
							return nil, err
						}
						id++
						changes = append(changes, events.Change{AggregateType: tickets.Aggregate, AggregateID: strconv.FormatInt(id, 10), Expect: 0, Events: evs})
					}
					return changes, nil
				}})
				if err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := a.Close(); err != nil {
		return err
	}
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	return nil
}
