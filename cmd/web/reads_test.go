package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"braid/internal/auth"
	"braid/internal/tickets"
)

// readsSeedVersion names the layout of the seeded databases kept under
// os.TempDir(); change it whenever seedReads changes what it writes.
const readsSeedVersion = "v1"

// Seeded layout: every ticket has one ticket_opened and commentsPer
// comments, so the ticket page measured has the same size whatever the
// size of the log; only the number of tickets grows with it.
const (
	readsUsers  = 8
	commentsPer = 49
)

// seededDB returns the path of a database holding exactly n events, seeded
// through the writer (real commands, real projections) and kept under
// os.TempDir() so later runs skip seeding.
func seededDB(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("braid-reads-%s-%d.db", readsSeedVersion, n))
	if _, err := os.Stat(path); err == nil {
		took, _ := os.ReadFile(path + ".seeded")
		b.Logf("using %s (seeded earlier in %s)", path, strings.TrimSpace(string(took)))
		return path
	}
	tmp := path + ".partial"
	for _, f := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
		os.Remove(f)
	}
	start := time.Now()
	if err := seedReads(tmp, n); err != nil {
		b.Fatalf("seed %d events: %v", n, err)
	}
	took := time.Since(start).Round(time.Millisecond)
	for _, ext := range []string{"-wal", "-shm"} {
		if err := os.Remove(tmp + ext); err != nil && !errors.Is(err, fs.ErrNotExist) {
			b.Fatal(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	os.WriteFile(path+".seeded", []byte(took.String()), 0o644)
	b.Logf("seeded %d events through the writer in %s (%.0f events/s), kept at %s", n, took, float64(n)/took.Seconds(), path)
	return path
}

// seedReads registers readsUsers users, opens n/(1+commentsPer) tickets and
// adds comments round-robin until the log holds exactly n events, with
// many concurrent Service calls so the writer commits in large groups.
func seedReads(path string, n int) error {
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
	nTickets := (n - readsUsers) / (1 + commentsPer)
	if nTickets < 1 {
		return fmt.Errorf("%d events hold no ticket", n)
	}
	nComments := n - readsUsers - nTickets

	// Jobs: tickets first (numbered in order by the writer), then comments.
	const workers = 256
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	work := func(total int64, do func(i int64) error) {
		next.Store(0)
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
	work(int64(nTickets), func(i int64) error {
		_, err := tix.Open(ctx, fmt.Sprintf("reader%d", i%readsUsers), tickets.Draft{Title: fmt.Sprintf("seeded ticket %d: export fails on <Safari>", i),
			Body: "steps:\n1. open\n2. see it fail", Labels: []string{"bug", fmt.Sprintf("area-%d", i%7)}}, "")
		return err
	})
	work(int64(nComments), func(i int64) error {
		id := 1 + i%int64(nTickets)
		_, err := tix.Comment(ctx, fmt.Sprintf("reader%d", i%readsUsers), id, fmt.Sprintf("comment %d: I see it too, with **markdown** & <b>tags</b>.\nSecond line.", i), "")
		return err
	})
	if firstErr != nil {
		return firstErr
	}
	if h := a.writer.Head().Position; h != int64(n) {
		return fmt.Errorf("seeded %d events, want %d", h, n)
	}
	return nil
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// signIn draws the login form (setting the CSRF cookie) and signs in.
func (lc *loadClient) signIn(user string) error {
	if err := lc.token("/login"); err != nil {
		return err
	}
	st, loc, err := lc.post("/login", url.Values{"username": {user}, "password": {"correct horse"}})
	if err != nil {
		return err
	}
	if st != http.StatusSeeOther || loc != "/tickets" {
		return fmt.Errorf("sign in as %s: got %d to %q, want 303 to /tickets", user, st, loc)
	}
	return nil
}

// get fetches path and returns the status and body.
func (lc *loadClient) get(path string) (int, string, error) {
	res, err := lc.c.Get(lc.base + path)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, string(body), err
}

// BenchmarkReads measures the ticket page and the list through the real
// server, signed in, on a log of 10k and of 1M events. The ticket measured
// has the same 49 comments in both; only the log (and the number of
// tickets) grows. Each iteration is one ticket page and one list page.
func BenchmarkReads(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"events=10k", 10_000}, {"events=1M", 1_000_000}} {
		b.Run(size.name, func(b *testing.B) {
			cached := seededDB(b, size.n)
			db := filepath.Join(b.TempDir(), "braid.db")
			if err := copyFile(db, cached); err != nil {
				b.Fatal(err)
			}
			if got := countEvents(b, db); got != size.n {
				b.Fatalf("seeded database has %d events, want %d", got, size.n)
			}
			s := startServer(b, "--db", db)
			tr := &http.Transport{MaxIdleConnsPerHost: 4}
			defer tr.CloseIdleConnections()
			lc := newLoadClient(s.URL, tr)
			if err := lc.signIn("reader1"); err != nil {
				b.Fatal(err)
			}
			nTickets := (size.n - readsUsers) / (1 + commentsPer)
			id := nTickets / 2
			ticket := "/tickets/" + strconv.Itoa(id)
			fetch := func(path, want string) time.Duration {
				t0 := time.Now()
				st, body, err := lc.get(path)
				d := time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				if st != http.StatusOK || !strings.Contains(body, want) {
					b.Fatalf("GET %s: got %d (body has %q: %t), want 200 with it", path, st, want, strings.Contains(body, want))
				}
				return d
			}
			// The page really is the seeded ticket with all its comments.
			if _, body, _ := lc.get(ticket); strings.Count(body, `id="comment-`) != commentsPer {
				b.Fatalf("GET %s: got %d comments, want %d", ticket, strings.Count(body, `id="comment-`), commentsPer)
			}
			for range 20 { // warm the caches and the connection
				fetch(ticket, "seeded ticket")
				fetch("/tickets", "seeded ticket")
			}
			tp, lp := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				tp = append(tp, fetch(ticket, "seeded ticket"))
				lp = append(lp, fetch("/tickets", "seeded ticket"))
			}
			b.StopTimer()
			p50 := func(ds []time.Duration) float64 {
				slices.Sort(ds)
				return float64(ds[len(ds)/2].Microseconds()) / 1000
			}
			b.ReportMetric(p50(tp), "ticket_p50_ms")
			b.ReportMetric(p50(lp), "list_p50_ms")
		})
	}
}
