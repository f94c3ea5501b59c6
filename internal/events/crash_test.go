package events_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"braid/internal/events"
	"braid/migrations"
)

// crashEnv names the database file the child appends to; its absence means
// TestCrashChild is running as an ordinary test and has nothing to do.
const crashEnv = "BRAID_CRASH_CHILD_DB"

// TestCrashChild is the child half of TestCrashKeepsAcknowledgedEvents: it
// appends from several goroutines until it is killed, printing
// "ack POSITION HASH" for each event only once Do has returned nil.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("run by TestCrashKeepsAcknowledgedEvents as a child process")
	}
	ctx := context.Background()
	db, err := events.Open(ctx, path, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	reg, typ := newRegistry(t, db)
	w, err := events.NewWriter(ctx, db, reg, events.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The parent kills us long before this; it only stops an orphan.
	deadline := time.Now().Add(60 * time.Second)
	var out sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				// One to three events per command, on a shared counter and
				// on this goroutine's own, so versions interleave.
				n := 1 + i%3
				res, err := w.Do(ctx, events.Command{Actor: "crash", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
					ch := []events.Change{{AggregateType: "counter", AggregateID: "shared", Expect: events.Any}}
					if n > 1 {
						ch = append(ch, events.Change{AggregateType: "counter", AggregateID: fmt.Sprintf("own-%d", g), Expect: events.Any})
					}
					for k := range n {
						ch[k%len(ch)].Events = append(ch[k%len(ch)].Events, typ.New(bumped{By: 1 + k}))
					}
					return ch, nil
				}})
				if err != nil {
					fmt.Fprintf(os.Stderr, "do: %v\n", err)
					os.Exit(3)
				}
				var sb strings.Builder
				for _, e := range res.Events {
					fmt.Fprintf(&sb, "ack %d %s\n", e.Position, events.Hex(e.Hash))
				}
				out.Lock()
				os.Stdout.WriteString(sb.String())
				out.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestCrashKeepsAcknowledgedEvents kills a process appending to the log at a
// random moment and checks that every event it acknowledged survived, that
// the braid is intact and that the projection agrees with the log.
func TestCrashKeepsAcknowledgedEvents(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("this is the child")
	}
	runs := 5
	if s := os.Getenv("BRAID_CRASH_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("BRAID_CRASH_RUNS=%q: want a positive number", s)
		}
		runs = n
	}
	for i := range runs {
		target := 50 + rand.IntN(1951)
		t.Run(fmt.Sprintf("run%d_kill_after_%d_acks", i, target), func(t *testing.T) {
			crashOnce(t, target)
		})
	}
}

type ack struct {
	position int64
	hash     [32]byte
}

func crashOnce(t *testing.T, target int) {
	path := filepath.Join(t.TempDir(), "braid.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Errorf("kill child: %v", err)
			}
		}
	}
	defer kill()

	// Every complete line is an acknowledgement; read until the pipe closes,
	// since lines written just before the kill count too.
	var acks []ack
	r := bufio.NewReader(stdout)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read child output: %v", err)
			}
			break // a line cut short by the kill was never acknowledged
		}
		if !strings.HasPrefix(line, "ack ") {
			continue // the testing package's own chatter
		}
		a, err := parseAck(line)
		if err != nil {
			t.Fatalf("child printed %q: %v", line, err)
		}
		acks = append(acks, a)
		if len(acks) >= target {
			kill()
		}
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("child ended by itself after %d acks (%v); stderr:\n%s", len(acks), werr, stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL; stderr:\n%s", werr, stderr.String())
	}
	if len(acks) < target {
		t.Fatalf("got %d acks, want at least %d", len(acks), target)
	}

	ctx := context.Background()
	db, err := events.Open(ctx, path, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg, typ := newRegistry(t, db)
	w, err := events.NewWriter(ctx, db, reg, events.WriterOptions{})
	if err != nil {
		t.Fatalf("reopen writer: %v", err)
	}
	defer w.Close()

	seen := map[int64][32]byte{}
	for _, a := range acks {
		if h, dup := seen[a.position]; dup {
			t.Fatalf("position %d acknowledged twice: %s and %s", a.position, events.Hex(h), events.Hex(a.hash))
		}
		seen[a.position] = a.hash
		e, err := events.Get(ctx, db.Read, a.position)
		if err != nil {
			t.Fatalf("acknowledged event %d: %v", a.position, err)
		}
		if e.Hash != a.hash {
			t.Fatalf("event %d has hash %s after the crash, want the acknowledged %s", a.position, events.Hex(e.Hash), events.Hex(a.hash))
		}
	}
	rep, err := events.Verify(ctx, db.Read)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Intact {
		t.Fatalf("braid after crash: got broken %+v, want intact", rep.Failure)
	}
	if rep.Events < int64(len(acks)) {
		t.Fatalf("log holds %d events, want at least the %d acknowledged", rep.Events, len(acks))
	}
	if w.Head() != rep.Head {
		t.Fatalf("writer head after reopen %d %s, want verified head %d %s", w.Head().Position, events.Hex(w.Head().Hash), rep.Head.Position, events.Hex(rep.Head.Hash))
	}

	// The projection is the fold of the log, no more and no less.
	want := map[string]int{}
	err = events.Scan(ctx, db.Read, 0, func(e *events.Event) error {
		d, err := typ.Decode(reg, e)
		want[e.AggregateID] += d.By
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	rows, err := db.Read.Query(`SELECT id, total FROM counters`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		got[id] = n
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counters projection after crash:\n got %v\nwant %v (folded from the log)", got, want)
	}
	var cp int64
	if err := db.Read.QueryRow(`SELECT position FROM projection_checkpoints WHERE name = 'counters'`).Scan(&cp); err != nil {
		t.Fatal(err)
	}
	if cp != rep.Head.Position {
		t.Fatalf("counters checkpoint %d, want head %d", cp, rep.Head.Position)
	}

	// The log goes on from where it stopped.
	res, err := w.Do(ctx, events.Command{Actor: "after", Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
		return []events.Change{{AggregateType: "counter", AggregateID: "shared", Expect: events.Any,
			Events: []events.Pending{typ.New(bumped{By: 1})}}}, nil
	}})
	if err != nil {
		t.Fatalf("append after crash: %v", err)
	}
	if e := res.Events[0]; e.Position != rep.Head.Position+1 || e.ParentHash != rep.Head.Hash {
		t.Fatalf("first event after crash at %d with parent %s, want %d with parent %s", e.Position, events.Hex(e.ParentHash), rep.Head.Position+1, events.Hex(rep.Head.Hash))
	}
	mustVerify(t, db, rep.Events+1)
	t.Logf("killed after %d acks; %d events on disk", len(acks), rep.Events)
}

func parseAck(line string) (ack, error) {
	var a ack
	f := strings.Fields(line)
	if len(f) != 3 {
		return a, fmt.Errorf("want 3 fields, got %d", len(f))
	}
	p, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return a, err
	}
	b, err := hex.DecodeString(f[2])
	if err != nil || len(b) != 32 {
		return a, fmt.Errorf("bad hash %q", f[2])
	}
	a.position = p
	copy(a.hash[:], b)
	return a, nil
}
