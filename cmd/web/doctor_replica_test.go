package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestDoctorChecksReplication: web doctor --replicate URL reads the
// replica and compares its head with the local log: ok when it holds the
// head, ok within --replica-within and warn beyond it when it lacks
// events, fail when it cannot be read or holds another log; skip without
// a URL. The URL also comes from BRAID_REPLICATE, as for serve.
func TestDoctorChecksReplication(t *testing.T) {
	rurl := fakeS3(t, "doctor")
	s := startServer(t, "--replicate", rurl)
	alice := newBrowser(t, s.URL)
	alice.register("alice")
	alice.open("replicated")
	waitReplicated(t, s.URL, int64(countEvents(t, s.DB)))
	s.stop()
	head := countEvents(t, s.DB)

	line := func(wantCode int, args ...string) string {
		t.Helper()
		code, out, errb := runWeb(t, append([]string{"doctor", "--db", s.DB}, args...)...)
		if code != wantCode {
			t.Fatalf("web doctor %s: exit %d, want %d; stderr %q\n%s", strings.Join(args, " "), code, wantCode, errb, out)
		}
		return doctorLines(out)["replication"]
	}
	if l := line(0); !strings.HasPrefix(l, "skip") || !strings.HasSuffix(l, "  replication not configured (serve --replicate URL)") {
		t.Errorf("doctor without a replica: %q", l)
	}
	if l := line(0, "--replicate", rurl); !strings.HasPrefix(l, "ok ") || !strings.Contains(l, fmt.Sprintf("holds the whole log, up to position %d", head)) || strings.Contains(l, "endpoint") {
		t.Errorf("doctor with the replica caught up: %q", l)
	}
	// From the environment, as serve reads it.
	var out, errb strings.Builder
	getenv := func(k string) string {
		if k == "BRAID_REPLICATE" {
			return rurl
		}
		return ""
	}
	if code := run(context.Background(), []string{"doctor", "--db", s.DB}, getenv, strings.NewReader(""), &out, &errb); code != 0 || !strings.HasPrefix(doctorLines(out.String())["replication"], "ok ") {
		t.Errorf("doctor with BRAID_REPLICATE: exit %d %q\n%s", code, errb.String(), out.String())
	}

	// Two events written with replication off: the replica lacks them.
	s2 := startServer(t, "--db", s.DB)
	alice2 := newBrowser(t, s2.URL)
	alice2.c = alice.c
	alice2.open("not replicated")
	s2.stop()
	behind := countEvents(t, s.DB) - head
	if l := line(0, "--replicate", rurl); !strings.HasPrefix(l, "ok ") || !strings.Contains(l, fmt.Sprintf("%d event", behind)) || !strings.Contains(l, "within 1m0s") {
		t.Errorf("doctor with the replica just behind: %q", l)
	}
	if l := line(0, "--replicate", rurl, "--replica-within", "1ms"); !strings.HasPrefix(l, "warn") || !strings.Contains(l, fmt.Sprintf("position %d of %d", head, head+behind)) || !strings.Contains(l, "ago") {
		t.Errorf("doctor with the replica behind for longer than --replica-within: %q", l)
	}

	// Another deployment's log, longer than the replica's: the event at
	// the replica's head differs.
	o := startServer(t)
	bob := newBrowser(t, o.URL)
	bob.register("bob")
	for range 3 {
		bob.open("another log")
	}
	o.stop()
	code, outo, _ := runWeb(t, "doctor", "--db", o.DB, "--replicate", rurl)
	if l := doctorLines(outo)["replication"]; code != 1 || !strings.HasPrefix(l, "fail") || !strings.Contains(l, fmt.Sprintf("different event at position %d", head)) {
		t.Errorf("doctor of another log against this replica: exit %d %q", code, l)
	}
	// A replica that holds nothing.
	empty := "file://" + filepath.Join(t.TempDir(), "empty")
	if l := line(1, "--replicate", empty); !strings.HasPrefix(l, "fail") || !strings.Contains(l, "cannot read the replica at "+empty) {
		t.Errorf("doctor with an empty replica: %q", l)
	}
	if code, _, errb := runWeb(t, "doctor", "--db", s.DB, "--replicate", "http://x"); code != 2 || !strings.Contains(errb, "want file:///path or s3://") {
		t.Errorf("doctor --replicate http://x: exit %d %q", code, errb)
	}
}
