package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	dto "github.com/prometheus/client_model/go"

	"braid/internal/replica"
	"braid/internal/tickets"
)

// fakeS3 starts an S3-compatible server on 127.0.0.1 (gofakes3, in
// process) with one bucket and returns a replica URL in it. It sets the
// AWS credentials Litestream reads and unsets AWS_CA_BUNDLE, which breaks
// Litestream's S3 client on machines that set it.
func fakeS3(t testing.TB, path string) string {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("braid"); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(ts.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	if v, ok := os.LookupEnv("AWS_CA_BUNDLE"); ok {
		os.Unsetenv("AWS_CA_BUNDLE")
		t.Cleanup(func() { os.Setenv("AWS_CA_BUNDLE", v) })
	}
	return "s3://braid/" + path + "?endpoint=" + url.QueryEscape(ts.URL) + "&region=us-east-1"
}

// TestReplicaServeHelper is the real program in a child process for
// TestReplicateKillRestore (which SIGKILLs it).
func TestReplicaServeHelper(t *testing.T) {
	args := strings.Fields(os.Getenv("BRAID_REPLICA_HELPER"))
	if len(args) == 0 {
		t.Skip("only run by TestReplicateKillRestore")
	}
	os.Exit(run(context.Background(), args, func(string) string { return "" }, os.Stdin, os.Stdout, os.Stderr))
}

var replicaLineRE = regexp.MustCompile(`primary position=(\d+) lag=`)

// replicated reads the replicated position from /healthz.
func replicated(t *testing.T, base string) int64 {
	t.Helper()
	res, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	bufio.NewReader(res.Body).WriteTo(&b)
	m := replicaLineRE.FindStringSubmatch(b.String())
	if m == nil {
		t.Fatalf("/healthz %q has no replication line", b.String())
	}
	p, _ := strconv.ParseInt(m[1], 10, 64)
	return p
}

func newTicketForm(b *browser, title string) url.Values {
	return b.form("/tickets/new", "", url.Values{"title": {title}})
}

// TestReplicateKillRestore writes through the HTTP server of a primary
// that replicates to S3, kills it with SIGKILL mid-load, restores the
// replica into a new file and finds every command acknowledged before the
// replicated position it last reported.
func TestReplicateKillRestore(t *testing.T) {
	rurl := fakeS3(t, "kill")
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "braid.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplicaServeHelper$")
	cmd.Env = append(os.Environ(), "BRAID_REPLICA_HELPER=serve --db "+dbPath+" --addr 127.0.0.1:0 --registration open --replicate "+rurl)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("primary did not start: %v\n%s", err, logs.String())
	}
	base := strings.TrimSpace(line[strings.Index(line, "http://"):])

	b := newBrowser(t, base)
	b.register("alice")
	csrf := newTicketForm(b, "x").Get("_csrf")
	// Load: a writer posting tickets as fast as it can; each 303 is an
	// acknowledged command.
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			title := fmt.Sprintf("load ticket %d", i)
			req, _ := http.NewRequest("POST", base+"/tickets", strings.NewReader(url.Values{"title": {title}, "_csrf": {csrf}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := b.c.Do(req)
			if err != nil {
				return // killed
			}
			res.Body.Close()
			if res.StatusCode == http.StatusSeeOther {
				mu.Lock()
				acked = append(acked, title)
				mu.Unlock()
			}
		}
	}()
	// Let the replica catch up with some of the load, then note what had
	// been acknowledged before the position it reports.
	var position int64
	var before []string
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acked)
		snap := append([]string(nil), acked...)
		mu.Unlock()
		if p := replicated(t, base); n >= 20 && p > 0 {
			// Everything acknowledged before this reading was committed
			// before it; whatever is at or below p must be on the replica.
			position, before = p, snap
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if position == 0 {
		t.Fatalf("the replica never reported a position\n%s", logs.String())
	}
	time.Sleep(300 * time.Millisecond) // still under load
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	close(stop)
	<-done

	restored := filepath.Join(t.TempDir(), "restored.db")
	code, out, errOut := runWeb(t, "restore", rurl, "--db", restored)
	if code != 0 {
		t.Fatalf("web restore: exit %d, %s%s", code, out, errOut)
	}
	if !strings.Contains(out, "intact") {
		t.Fatalf("web restore said %q, want the head it restored to", out)
	}
	// Every event up to the replicated position is the primary's own.
	primary, copy := eventHashes(t, dbPath), eventHashes(t, restored)
	if int64(len(copy)) < position {
		t.Fatalf("restored %d events, want at least the replicated position %d", len(copy), position)
	}
	for i := int64(0); i < position; i++ {
		if copy[i] != primary[i] {
			t.Fatalf("event %d differs between the primary and the restored copy", i+1)
		}
	}
	titles := ticketTitles(t, restored)
	missing := 0
	for _, title := range before {
		if !titles[title] {
			missing++
		}
	}
	// The load kept running after the reading: "before" were acknowledged
	// before the replica said it held position, so every one of them that
	// lies at or below it is there; count those below it.
	inPrimary := ticketPositions(t, dbPath)
	for _, title := range before {
		if p := inPrimary[title]; p > 0 && p <= position && !titles[title] {
			t.Fatalf("%q (position %d) was acknowledged and replicated (position %d) but is not in the restored copy", title, p, position)
		}
	}
	t.Logf("acknowledged before the reading: %d, replicated position %d, restored %d events (%d acknowledged later or beyond)", len(before), position, len(copy), missing)
}

func eventHashes(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT hex(hash) FROM events ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		rows.Scan(&h)
		out = append(out, h)
	}
	return out
}

func ticketPositions(t *testing.T, path string) map[string]int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT position, json_extract(` + payloadData + `, '$.title') FROM events WHERE event_type = 'ticket_opened'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var p int64
		var title string
		rows.Scan(&p, &title)
		out[title] = p
	}
	return out
}

func ticketTitles(t *testing.T, path string) map[string]bool {
	out := map[string]bool{}
	for title := range ticketPositions(t, path) {
		out[title] = true
	}
	return out
}

// TestRestoreRefusesTamperedReplica: a replica whose tail was rewritten
// (the last event's data changed, its hash left alone) restores into a
// file that SQLite finds sound but whose braid is broken: web restore
// exits 1 and leaves nothing at the path asked for.
func TestRestoreRefusesTamperedReplica(t *testing.T) {
	rurl := fakeS3(t, "tamper")
	s := startServer(t, "--replicate", rurl)
	b := newBrowser(t, s.URL)
	b.register("alice")
	for i := range 3 {
		if a := b.post("/tickets", newTicketForm(b, fmt.Sprintf("ticket %d", i))); a.status != http.StatusSeeOther {
			t.Fatalf("new ticket: %d", a.status)
		}
	}
	head := countEvents(t, s.DB)
	waitReplicated(t, s.URL, int64(head))
	// /verify says it too, in words and in its JSON.
	if a := b.get("/verify"); !strings.Contains(a.body, fmt.Sprintf("the replica holds the log up to position %d", head)) {
		t.Fatalf("/verify does not show the replicated position %d: %s", head, a.body)
	}
	var vs struct {
		Replica *struct {
			Role     string `json:"role"`
			Position int64  `json:"position"`
		} `json:"replica"`
	}
	if a := b.do("GET", "/verify", nil, "Accept", "application/json"); json.Unmarshal([]byte(a.body), &vs) != nil || vs.Replica == nil || vs.Replica.Role != "primary" || vs.Replica.Position != int64(head) {
		t.Fatalf("/verify JSON %q: want replica position %d", a.body, head)
	}
	s.stop()

	// The attacker restores the replica, rewrites the last event, and
	// puts the result back in place of the replica.
	work := filepath.Join(t.TempDir(), "work.db")
	if code, out, errOut := runWeb(t, "restore", rurl, "--db", work); code != 0 {
		t.Fatalf("restore before tampering: exit %d %s%s", code, out, errOut)
	}
	db, err := sql.Open("sqlite", "file:"+work)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `DROP TRIGGER events_refuse_update`,
		`UPDATE events SET data = replace(data, 'ticket 2', 'ticket two') WHERE position = (SELECT MAX(position) FROM events)`)
	db.Close()
	tampered := fakeS3(t, "tamper") // a fresh bucket under the same name
	r, err := replica.Start(context.Background(), work, tampered, func(context.Context) (int64, error) { return 0, nil }, testLogger(), replica.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "restored.db")
	code, stdout, stderr := runWeb(t, "restore", tampered, "--db", out)
	if code != 1 || !strings.Contains(stderr, "refused") || !strings.Contains(stderr, "broken at position") {
		t.Fatalf("restore of a tampered replica: exit %d, %q %q; want exit 1 and a refusal naming the broken position", code, stdout, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatalf("a refused restore left %s", out)
	}
	if _, err := os.Stat(out + ".broken"); err != nil {
		t.Fatalf("the refused copy is not kept as %s.broken: %v", out, err)
	}
}

func waitReplicated(t *testing.T, base string, head int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for replicated(t, base) < head {
		if time.Now().After(deadline) {
			t.Fatalf("the replica did not reach position %d", head)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// followLag is N: a follower serves what the primary wrote within this.
const followLag = 5 * time.Second

// TestFollowerServesSameTicketJSON: a follower started from the replica
// serves the same ticket JSON as the primary within followLag of a
// write, says it is a copy, and answers a POST with 503.
func TestFollowerServesSameTicketJSON(t *testing.T) {
	rurl := fakeS3(t, "follow")
	p := startServer(t, "--replicate", rurl)
	b := newBrowser(t, p.URL)
	b.register("alice")
	if a := b.post("/tickets", newTicketForm(b, "first")); a.status != http.StatusSeeOther {
		t.Fatalf("new ticket: %d", a.status)
	}
	waitReplicated(t, p.URL, int64(countEvents(t, p.DB)))
	f := startServer(t, "--follow", rurl, "--primary-url", "https://primary.example", "--follow-every", "200ms",
		"--metrics-addr", "127.0.0.1:0", "--metrics-token", testMetricsToken, "--log-format", "json")
	// Both listen on 127.0.0.1: the session cookie (replicated with the
	// database) goes to both.
	fb := &browser{tb: t, base: f.URL, c: b.c}

	ticketJSON := func(br *browser) string {
		a := br.do("GET", "/tickets/1", nil, "Accept", "application/json")
		if a.status != http.StatusOK {
			t.Fatalf("GET %s/tickets/1: %d %s", br.base, a.status, a.body)
		}
		var v any
		if err := json.Unmarshal([]byte(a.body), &v); err != nil {
			t.Fatalf("not JSON: %q", a.body)
		}
		return a.body
	}
	// A write on the primary, then the follower until it matches.
	form := b.form("/tickets/1", "/tickets/1/comments", url.Values{"body": {"a comment from the primary"}})
	if a := b.post("/tickets/1/comments", form); a.status != http.StatusSeeOther {
		t.Fatalf("comment: %d %s", a.status, a.body)
	}
	wrote := time.Now()
	want := ticketJSON(b)
	for ticketJSON(fb) != want {
		if time.Since(wrote) > followLag {
			t.Fatalf("after %s the follower serves\n%s\nthe primary\n%s", followLag, ticketJSON(fb), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the follower served the primary's ticket JSON %s after the write (N = %s)", time.Since(wrote).Round(time.Millisecond), followLag)

	// Its metrics, on their own address and behind the token on the main
	// one, say the position /healthz says: the primary's head.
	m := metricsURL.FindStringSubmatch(f.Log.String())
	if m == nil {
		t.Fatalf("no metrics address in the follower's log:\n%s", f.Log.String())
	}
	head := float64(countEvents(t, p.DB))
	if pos := followed(t, f.URL); float64(pos) != head {
		t.Fatalf("the follower's /healthz says position %d, the primary's head is %v", pos, head)
	}
	for _, fams := range []map[string]*dto.MetricFamily{scrape(t, m[1], ""), scrape(t, f.URL+"/metrics", testMetricsToken)} {
		if got := value(fams, "braid_replication_position", nil); got != head {
			t.Errorf("follower braid_replication_position %v, want %v", got, head)
		}
		if got := value(fams, "braid_head_position", nil); got != head {
			t.Errorf("follower braid_head_position %v, want %v", got, head)
		}
		if lag := value(fams, "braid_replication_lag_seconds", nil); lag < 0 || lag > followLag.Seconds() {
			t.Errorf("follower braid_replication_lag_seconds %v", lag)
		}
	}

	page := fb.get("/tickets/1")
	if !strings.Contains(page.body, "read-only copy") || !strings.Contains(page.body, "https://primary.example") {
		t.Fatalf("the follower's page does not say it is a copy of the primary: %s", page.body)
	}
	if a := fb.post("/tickets/1/comments", form); a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "https://primary.example") {
		t.Fatalf("POST to the follower: %d %q, want 503 with a link to the primary", a.status, a.body)
	}

	// Restarted on its own copy, a follower restores afresh.
	f.stop()
	f2 := startServer(t, "--follow", rurl, "--db", f.DB)
	if got := ticketJSON(&browser{tb: t, base: f2.URL, c: b.c}); got != want {
		t.Fatalf("the restarted follower serves\n%s\nwant\n%s", got, want)
	}
}

func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestReplicaFlagsRefused: mistakes in the replication flags and in
// restore's arguments are refused with exit 2 and one line, before
// anything is written.
func TestReplicaFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.db")
	if err := os.WriteFile(existing, []byte("not a follower's"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := "file://" + filepath.Join(dir, "empty-replica")
	fresh := filepath.Join(dir, "fresh.db")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"follow and replicate", []string{"serve", "--db", fresh, "--follow", empty, "--replicate", empty}, "--follow and --replicate"},
		{"primary url not http", []string{"serve", "--db", fresh, "--follow", empty, "--primary-url", "javascript:alert(1)"}, "want an http or https URL"},
		{"primary url without follow", []string{"serve", "--db", fresh, "--primary-url", "https://p.example"}, "--primary-url needs --follow"},
		{"replicate to an unknown scheme", []string{"serve", "--db", fresh, "--replicate", "http://bucket/x"}, "want file:///path or s3://"},
		{"follow with scheduled exports", []string{"serve", "--db", fresh, "--follow", empty, "--export-every", "1h", "--export-dir", dir}, "a follower records nothing"},
		{"follow into a foreign file", []string{"serve", "--db", existing, "--follow", empty}, "not a follower's copy"},
		{"restore without a URL", []string{"restore", "--db", fresh}, "want the replica's URL first"},
		{"restore into an existing file", []string{"restore", empty, "--db", existing}, "already exists"},
		{"restore at a bad time", []string{"restore", empty, "--db", fresh, "--at", "yesterday"}, "want an RFC 3339 time"},
		{"restore from an empty replica", []string{"restore", empty, "--db", fresh}, "holds no database"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runWeb(t, c.args...)
			if code != exitFailed || !strings.Contains(stderr, c.want) {
				t.Fatalf("web %s: exit %d, %q; want exit 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
			}
			b, _ := os.ReadFile(existing)
			if string(b) != "not a follower's" {
				t.Fatalf("%s was changed", existing)
			}
			if c.args[0] == "restore" {
				if _, err := os.Stat(fresh); err == nil {
					t.Fatalf("a refused restore left %s", fresh)
				}
			}
		})
	}
}

var followerLineRE = regexp.MustCompile(`follower position=(\d+) lag=`)

// followed reads a follower's position from /healthz.
func followed(t *testing.T, base string) int64 {
	t.Helper()
	res, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	bufio.NewReader(res.Body).WriteTo(&b)
	m := followerLineRE.FindStringSubmatch(b.String())
	if m == nil {
		t.Fatalf("/healthz %q has no follower line", b.String())
	}
	p, _ := strconv.ParseInt(m[1], 10, 64)
	return p
}

// TestFollowerCatchesUpAfterCompaction: the primary's replica compacts
// level-0 files into level 1 every second and prunes them a second later;
// a follower that looks only every 4 seconds finds the files for its next
// transactions gone, catches up from the compacted ones, and holds the
// primary's log event for event.
func TestFollowerCatchesUpAfterCompaction(t *testing.T) {
	rurl := fakeS3(t, "compact")
	ctx := context.Background()
	a, err := openApp(ctx, filepath.Join(t.TempDir(), "primary.db"), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	head := func(context.Context) (int64, error) { return a.writer.Head().Position, nil }
	rep, err := replica.Start(ctx, a.db.Path, rurl, head, testLogger(), replica.Options{Every: 100 * time.Millisecond,
		Compaction: &replica.Compaction{L1: time.Second, L2: 2 * time.Second, L0Retention: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close(ctx)
	tix := tickets.NewService(a.writer, a.reg, a.types.tickets)
	write := func(n int) int64 {
		for i := range n {
			if _, err := tix.Open(ctx, "alice", tickets.Draft{Title: fmt.Sprintf("ticket %d", i)}, ""); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // one transaction, one level-0 file, each
		}
		h := a.writer.Head().Position
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if p, _, _ := rep.Status(); p >= h {
				return h
			}
			if time.Now().After(deadline) {
				t.Fatalf("the replica did not reach position %d", h)
			}
		}
	}
	write(3)
	f := startServer(t, "--follow", rurl, "--follow-every", "4s")
	started := time.Now()
	client, err := replica.NewClient(ctx, rurl)
	if err != nil {
		t.Fatal(err)
	}
	level0 := func() (n int) {
		itr, err := client.LTXFiles(ctx, 0, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		defer itr.Close()
		for itr.Next() {
			n++
		}
		return n
	}
	for round := range 1 {
		before := followed(t, f.URL)
		h := write(5)
		// Wait until the level-0 files of those writes are gone (pruned
		// after compaction) while the follower has not yet looked.
		for deadline := time.Now().Add(10 * time.Second); level0() > 1; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the replica kept %d level-0 files", round, level0())
			}
		}
		if p := followed(t, f.URL); p != before {
			t.Fatalf("round %d: the follower moved from %d to %d before the level-0 files were pruned: look less often", round, before, p)
		}
		for deadline := time.Now().Add(15 * time.Second); followed(t, f.URL) < h; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the follower stayed at %d after compaction, the primary is at %d\n%s", round, followed(t, f.URL), h, f.Log)
			}
		}
	}
	t.Logf("writes, compaction and catch-up in %s", time.Since(started).Round(time.Millisecond))
	f.stop()
	primary, copy := eventHashes(t, a.db.Path), eventHashes(t, f.DB)
	if len(copy) != len(primary) {
		t.Fatalf("the follower holds %d events, the primary %d", len(copy), len(primary))
	}
	for i := range primary {
		if copy[i] != primary[i] {
			t.Fatalf("event %d differs between the primary and the follower", i+1)
		}
	}

	// web doctor on the follower's copy: it trails the replica, which is
	// not a failure while the events it lacks are recent.
	doctor := func(args ...string) (int, string) {
		code, out, _ := runWeb(t, append([]string{"doctor", "--db", f.DB, "--replicate", rurl}, args...)...)
		return code, doctorLines(out)["replication"]
	}
	if _, l := doctor(); !strings.HasPrefix(l, "ok ") || !strings.Contains(l, fmt.Sprintf("holds the whole log, up to position %d", len(primary))) {
		t.Errorf("doctor on a follower's copy caught up: %q", l)
	}
	h := write(2)
	if _, l := doctor(); !strings.HasPrefix(l, "ok ") || !strings.Contains(l, fmt.Sprintf("up to position %d of the %d", len(primary), h)) {
		t.Errorf("doctor on a follower's copy just behind: %q", l)
	}
	if _, l := doctor("--replica-within", "1ms"); !strings.HasPrefix(l, "warn") || !strings.Contains(l, "is serve --follow running?") {
		t.Errorf("doctor on a follower's copy behind for longer than --replica-within: %q", l)
	}
}
