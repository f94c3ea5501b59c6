package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"braid/internal/auth"
	"braid/internal/tickets"
)

// triageSeedVersion names the layout of the database kept under
// os.TempDir() by triageDB; change it whenever seedTriage changes.
const triageSeedVersion = "v2"

const (
	triageTickets  = 100_000
	triageComments = 100_000 // spread unevenly, so "most commented" has a real order
	triageClosed   = 20_000
)

// triageDB returns a database of 100k tickets (with comments and closes),
// seeded once through the writer (real commands, real projections) by
// many concurrent callers so it commits in large groups, and kept under
// os.TempDir() so later runs skip seeding.
func triageDB(b *testing.B) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("braid-triage-%s-%d.db", triageSeedVersion, triageTickets))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := path + ".partial"
	for _, f := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
		os.Remove(f)
	}
	start := time.Now()
	if err := seedTriage(tmp); err != nil {
		b.Fatalf("seed triage: %v", err)
	}
	for _, ext := range []string{"-wal", "-shm"} {
		if err := os.Remove(tmp + ext); err != nil && !errors.Is(err, fs.ErrNotExist) {
			b.Fatal(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d tickets in %s, kept at %s", triageTickets, time.Since(start).Round(time.Millisecond), path)
	return path
}

func seedTriage(path string) error {
	ctx := context.Background()
	a, err := openApp(ctx, path, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	people := &auth.Service{DB: a.db, Writer: a.writer, Types: a.types.users, Cost: bcrypt.MinCost, Override: auth.RegistrationOpen}
	tix := tickets.NewService(a.writer, a.reg, a.types.tickets)
	for i := range readsUsers {
		u := fmt.Sprintf("reader%d", i)
		if _, _, err := people.SignUp(ctx, auth.Registration{Username: u, Password: "correct horse", Confirmation: "correct horse"}, ""); err != nil {
			return err
		}
	}
	const workers = 256
	var firstErr error
	var once sync.Once
	work := func(total int64, do func(i int64) error) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= total {
						return
					}
					if err := do(i); err != nil {
						once.Do(func() { firstErr = fmt.Errorf("worker %d, job %d: %w", w, i, err) })
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	work(triageTickets, func(i int64) error {
		_, err := tix.Open(ctx, fmt.Sprintf("reader%d", i%readsUsers), tickets.Draft{Title: fmt.Sprintf("seeded ticket %d", i),
			Body: "steps:\n1. open\n2. see it fail", Labels: []string{"bug", fmt.Sprintf("area-%d", i%7)}}, "")
		return err
	})
	work(triageComments, func(i int64) error {
		id := 1 + (i*i*7919)%triageTickets // uneven: some tickets get many comments, most none
		_, err := tix.Comment(ctx, fmt.Sprintf("reader%d", i%readsUsers), id, fmt.Sprintf("comment %d", i), "")
		return err
	})
	work(triageClosed, func(i int64) error {
		return tix.Close(ctx, "reader0", 1+i*5, "")
	})
	return firstErr
}

// BenchmarkTriageList measures the ticket list page through the real
// server, signed in, over 100k tickets, in each order, and reports the
// median page time:
//
//	go test -run XXX -bench TriageList -benchtime 300x ./cmd/web
func BenchmarkTriageList(b *testing.B) {
	cached := triageDB(b)
	db := filepath.Join(b.TempDir(), "braid.db")
	if err := copyFile(db, cached); err != nil {
		b.Fatal(err)
	}
	s := startServer(b, "--db", db)
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	lc := newLoadClient(s.URL, tr)
	if err := lc.signIn("reader1"); err != nil {
		b.Fatal(err)
	}
	// The server checks the whole log once at start (a background verify
	// of 220k events): wait for it, so it does not share the two cores
	// with what is measured.
	for deadline := time.Now().Add(2 * time.Minute); ; {
		req, _ := http.NewRequest("GET", s.URL+"/verify", nil)
		req.Header.Set("Accept", "application/json")
		res, err := lc.c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the start-up verify did not finish: %d", res.StatusCode)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, sort := range []string{"updated", "created", "comments"} {
		b.Run("sort="+sort, func(b *testing.B) {
			path := "/tickets?sort=" + sort
			fetch := func() time.Duration {
				t0 := time.Now()
				st, body, err := lc.get(path)
				d := time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				if st != http.StatusOK || !strings.Contains(body, "seeded ticket") || !strings.Contains(body, "80000 open") {
					b.Fatalf("GET %s: got %d, want 200 with 80000 open seeded tickets", path, st)
				}
				return d
			}
			for range 20 { // warm the caches and the connection
				fetch()
			}
			ds := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				ds = append(ds, fetch())
			}
			b.StopTimer()
			slices.Sort(ds)
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
		})
	}
}
