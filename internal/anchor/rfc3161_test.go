package anchor_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"braid/internal/anchor"
	"braid/internal/anchor/anchortest"
	"braid/internal/events"
)

func testHead(pos int64, seed string) events.Head {
	return events.Head{Position: pos, Hash: sha256.Sum256([]byte(seed))}
}

func roots(tb testing.TB, tsa *anchortest.TSA) *anchor.RFC3161 {
	tb.Helper()
	pool, err := anchor.LoadRoots(tsa.Roots)
	if err != nil {
		tb.Fatal(err)
	}
	return &anchor.RFC3161{URL: tsa.URL, Roots: pool}
}

// opensslVerify runs the check docs/anchoring.md gives users.
func opensslVerify(tb testing.TB, der []byte, head events.Head, rootsPEM string) (string, error) {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.tsr"), der, 0o600); err != nil {
		tb.Fatal(err)
	}
	return anchortest.RunOpenssl(dir, "ts", "-verify", "-digest", hex.EncodeToString(head.Hash[:]), "-in", "r.tsr", "-CAfile", rootsPEM)
}

func TestRFC3161AnchorAndCheck(t *testing.T) {
	ctx := context.Background()
	tsa := anchortest.NewTSA(t, "Braid Test")
	w := roots(t, tsa)
	head := testHead(7, "head seven")

	start := time.Now()
	r, err := w.Anchor(ctx, head)
	if err != nil {
		t.Fatalf("anchor: %v", err)
	}
	t.Logf("tsa round trip (openssl ts -reply): %v", time.Since(start))
	if r.Witness != "rfc3161" {
		t.Errorf("witness: got %q, want rfc3161", r.Witness)
	}
	if r.Details["chain"] != "checked" || r.Details["policy"] != "1.2.3.4.1" || !strings.Contains(r.Details["tsa"], "Braid Test TSA") {
		t.Errorf("details: got %v, want chain checked, policy 1.2.3.4.1, tsa Braid Test TSA", r.Details)
	}
	if err := w.Check(ctx, head, r); err != nil {
		t.Fatalf("check own receipt: %v", err)
	}

	// The stored blob alone convinces openssl, with the head hex as digest.
	if out, err := opensslVerify(t, r.Data, head, tsa.Roots); err != nil || !strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl ts -verify: got %v: %s, want Verification: OK", err, out)
	}

	// A receipt is about one hash only.
	other := testHead(7, "another head")
	err = w.Check(ctx, other, r)
	if !anchor.Refused(err) || !strings.Contains(err.Error(), "want head hash") {
		t.Fatalf("check against another hash: got %v, want a refusal naming the hash", err)
	}
	if out, err := opensslVerify(t, r.Data, other, tsa.Roots); err == nil {
		t.Fatalf("openssl ts -verify with another digest: got success (%s), want failure", out)
	}

	// Without roots Check refuses rather than saying yes.
	if err := (&anchor.RFC3161{}).Check(ctx, head, r); !anchor.Refused(err) {
		t.Fatalf("check without roots: got %v, want a refusal", err)
	}

	// Garbage is refused, not panicked on.
	if err := w.Check(ctx, head, anchor.Receipt{Witness: "rfc3161", Data: []byte("not der")}); !anchor.Refused(err) {
		t.Fatalf("check garbage: got %v, want a refusal", err)
	}
}

func TestRFC3161UntrustedTSARefused(t *testing.T) {
	ctx := context.Background()
	trusted := anchortest.NewTSA(t, "Trusted")
	rogue := anchortest.NewTSA(t, "Rogue")
	w := roots(t, trusted)
	w.URL = rogue.URL
	head := testHead(3, "three")

	_, err := w.Anchor(ctx, head)
	if !anchor.Refused(err) || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("anchor with an untrusted TSA: got %v, want a refusal (unknown authority)", err)
	}

	// A receipt from the rogue TSA, obtained without roots, still fails Check.
	r, err := (&anchor.RFC3161{URL: rogue.URL}).Anchor(ctx, head)
	if err != nil {
		t.Fatalf("anchor without roots: %v", err)
	}
	if got := r.Details["chain"]; !strings.HasPrefix(got, "not checked") {
		t.Errorf("details chain: got %q, want not checked", got)
	}
	if err := w.Check(ctx, head, r); !anchor.Refused(err) || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("check a rogue receipt: got %v, want a refusal (unknown authority)", err)
	}
	// and the rogue's own roots do accept it: the refusal was about trust.
	if err := roots(t, rogue).Check(ctx, head, r); err != nil {
		t.Fatalf("check with the rogue's roots: got %v, want nil", err)
	}
}

func TestRFC3161ReplayedTokenRefused(t *testing.T) {
	ctx := context.Background()
	tsa := anchortest.NewTSA(t, "Braid Test")
	w := roots(t, tsa)
	old, err := w.Anchor(ctx, testHead(1, "one"))
	if err != nil {
		t.Fatal(err)
	}
	// A server that answers every query with yesterday's (real, valid) token.
	replay := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/timestamp-reply")
		rw.Write(old.Data)
	}))
	defer replay.Close()

	w.URL = replay.URL
	if _, err := w.Anchor(ctx, testHead(2, "two")); !anchor.Refused(err) || !strings.Contains(err.Error(), "want head hash") {
		t.Fatalf("anchor answered with a token for another hash: got %v, want a refusal", err)
	}
	if _, err := w.Anchor(ctx, testHead(1, "one")); !anchor.Refused(err) || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("anchor answered with a replayed token for the same hash: got %v, want a nonce refusal", err)
	}
}

func TestRFC3161ErrorStatusRefused(t *testing.T) {
	ctx := context.Background()
	tsa := anchortest.NewTSA(t, "Braid Test")
	w := roots(t, tsa)
	// Ask openssl for a reply to a query it must reject: a policy it does
	// not serve. openssl answers with status rejection, which is what a
	// real TSA sends for requests it will not stamp.
	anchortest.Openssl(t, tsa.Dir, "ts", "-query", "-digest", strings.Repeat("ab", 32), "-sha256", "-tspolicy", "1.9.9.9", "-out", "bad.tsq")
	query, err := os.ReadFile(filepath.Join(tsa.Dir, "bad.tsq"))
	if err != nil {
		t.Fatal(err)
	}
	rejection, err := tsa.Reply(query)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/timestamp-reply")
		rw.Write(rejection)
	}))
	defer srv.Close()
	w.URL = srv.URL
	_, err = w.Anchor(ctx, testHead(1, "one"))
	if !anchor.Refused(err) || !strings.Contains(err.Error(), "not a granted timestamp") {
		t.Fatalf("anchor answered with a rejection: got %v, want a refusal", err)
	}
}

func TestRFC3161Down(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	tsa := anchortest.NewTSA(t, "Braid Test")
	w := roots(t, tsa)
	w.URL = url
	_, err = w.Anchor(context.Background(), testHead(1, "one"))
	if err == nil || anchor.Refused(err) {
		t.Fatalf("anchor with the TSA down: got %v, want a could-not-reach error (not a refusal)", err)
	}
}
