package main

import (
	"bytes"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"braid/internal/anchor/anchortest"
)

func countAnchors(tb testing.TB, path string) (n int, pos int64, matches bool) {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT COUNT(*) FROM anchors`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	if n == 0 {
		return 0, 0, false
	}
	var ah, eh []byte
	if err := db.QueryRow(`SELECT a.position, a.hash, e.hash FROM anchors a JOIN events e ON e.position = a.position ORDER BY a.id DESC LIMIT 1`).Scan(&pos, &ah, &eh); err != nil {
		tb.Fatal(err)
	}
	return n, pos, bytes.Equal(ah, eh)
}

// The scheduled job: a witness that is down leaves the site working and
// the job retrying; once it is up, the head is anchored.
func TestServeAnchorsOnScheduleAndSurvivesWitnessDown(t *testing.T) {
	tsa := anchortest.NewTSA(t, "Schedule")
	tsa.Stop()
	s := startServer(t, "--anchor-every", "300ms", "--witness", "rfc3161", "--tsa-url", tsa.URL, "--tsa-roots", tsa.Roots)

	b := newBrowser(t, s.URL)
	b.register("ada") // the site works while the witness is down
	b.open("first ticket")
	time.Sleep(time.Second)
	if n, _, _ := countAnchors(t, s.DB); n != 0 {
		t.Fatalf("anchors while the TSA is down: got %d, want 0", n)
	}

	tsa.Start(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, pos, ok := countAnchors(t, s.DB)
		if n > 0 {
			if !ok {
				t.Fatalf("anchor at position %d does not match the log's hash", pos)
			}
			if want := int64(countEvents(t, s.DB)); pos != want {
				t.Fatalf("anchored position %d, want the head %d", pos, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no anchor 20 s after the TSA came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The anchor's page says it matches and how to check it; the receipt it
	// offers passes openssl's own check.
	page := b.get("/anchors/1")
	if page.status != 200 || !strings.Contains(page.body, "matches the log") || !strings.Contains(page.body, "openssl ts -verify -digest") {
		t.Fatalf("anchor page: got %d\n%s", page.status, page.body)
	}
	rec := b.get("/anchors/1/receipt")
	if rec.status != 200 || rec.header.Get("Content-Type") != "application/timestamp-reply" {
		t.Fatalf("receipt: got %d %q", rec.status, rec.header.Get("Content-Type"))
	}
	tsr := filepath.Join(t.TempDir(), "r.tsr")
	os.WriteFile(tsr, []byte(rec.body), 0o644)
	_, head, _ := countAnchors(t, s.DB)
	hash := hashAt(t, s.DB, head)
	// The log has a transparency tree, so the imprint is the v2 digest of
	// the head and the tree root (docs/anchoring.md) the page shows.
	m := regexp.MustCompile(`openssl ts -verify -digest ([0-9a-f]{64})`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("anchor page shows no digest to check:\n%s", page.body)
	}
	if out, err := anchortest.RunOpenssl(t.TempDir(), "ts", "-verify", "-digest", m[1], "-in", tsr, "-CAfile", tsa.Roots); err != nil || !strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl ts -verify on the downloaded receipt: %v\n%s", err, out)
	}
	if a := b.get("/anchors/99"); a.status != 404 {
		t.Fatalf("unknown anchor: got %d, want 404", a.status)
	}

	// /verify, public, lists the anchor and the full head.
	pub := newBrowser(t, s.URL)
	var vpage answer
	for i := 0; i < 50; i++ { // the first check runs in the background
		vpage = pub.get("/verify")
		if strings.Contains(vpage.body, hash) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if vpage.status != 200 || !strings.Contains(vpage.body, hash) || !strings.Contains(vpage.body, "rfc3161") {
		t.Fatalf("/verify: got %d, want the head %s and the rfc3161 anchor\n%s", vpage.status, hash, vpage.body)
	}

	// web verify checks the receipt against the roots it is given, and
	// refuses it under roots that did not sign it.
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"verify", "--db", s.DB, "--tsa-roots", tsa.Roots}, func(string) string { return "" }, nil, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "receipt checked by rfc3161") {
		t.Fatalf("verify with the TSA's roots: exit %d\n%s%s", code, out.String(), errb.String())
	}
	other := anchortest.NewTSA(t, "Other")
	out.Reset()
	errb.Reset()
	code = run(t.Context(), []string{"verify", "--db", s.DB, "--tsa-roots", other.Roots}, func(string) string { return "" }, nil, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "receipt does not hold") {
		t.Fatalf("verify with other roots: exit %d, want 1 and the anchor named\n%s%s", code, out.String(), errb.String())
	}

	// The head has not moved: the job skips rather than anchoring again.
	time.Sleep(time.Second)
	if n, _, _ := countAnchors(t, s.DB); n != 1 {
		t.Fatalf("anchors after the head stood still: got %d, want 1", n)
	}
}

func TestServeRefusesWitnessWithoutSchedule(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"serve", "--db", t.TempDir() + "/b.db", "--witness", "rfc3161", "--tsa-url", "http://127.0.0.1:1"},
		func(string) string { return "" }, nil, &out, &errb)
	if code != exitFailed || !bytes.Contains(errb.Bytes(), []byte("--anchor-every")) {
		t.Fatalf("got exit %d, stderr %q; want 2 and a word on --anchor-every", code, errb.String())
	}
}

func hashAt(tb testing.TB, path string, pos int64) string {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var h []byte
	if err := db.QueryRow(`SELECT hash FROM events WHERE position = ?`, pos).Scan(&h); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(h)
}
