// Package anchortest runs real witnesses for tests: an RFC 3161 timestamp
// authority played by `openssl ts -reply` behind an HTTP handler, and a local
// EVM chain played by anvil (from npm). Nothing here is a mock; the tests of
// internal/anchor and cmd/web share these fixtures.
package anchortest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// AnvilKey is anvil's well-known dev account #0 private key (public test
// key, funded on every fresh anvil chain).
const AnvilKey = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

// TSA is a local timestamp authority: its own CA, a TSA certificate with the
// critical timeStamping EKU issued by that CA, and openssl answering queries.
type TSA struct {
	Dir   string // working directory holding the keys, certificates and config
	Roots string // PEM file of this TSA's CA: the trusted root to check its replies
	URL   string // where to POST TimeStampReqs

	mu     sync.Mutex // openssl updates the serial file: one reply at a time
	addr   string
	server *httptest.Server
}

const tsaConfig = `[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = placeholder

[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[ v3_tsa ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer

[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
dir = {{DIR}}
serial = {{DIR}}/tsaserial
crypto_device = builtin
signer_cert = {{DIR}}/tsa.crt
certs = {{DIR}}/ca.crt
signer_key = {{DIR}}/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5.6
digests = sha256, sha384, sha512
accuracy = secs:1, millisecs:500, microsecs:100
clock_precision_digits = 0
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
`

// NewTSA makes a fresh CA and TSA certificate with openssl and starts
// serving on a free loopback port. It is stopped at the end of the test.
func NewTSA(tb testing.TB, name string) *TSA {
	tb.Helper()
	dir := tb.TempDir()
	t := &TSA{Dir: dir, Roots: filepath.Join(dir, "ca.crt")}
	cnf := filepath.Join(dir, "tsa.cnf")
	if err := os.WriteFile(cnf, []byte(strings.ReplaceAll(tsaConfig, "{{DIR}}", dir)), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tsaserial"), []byte("01\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	for _, args := range [][]string{
		{"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
			"-days", "3650", "-subj", "/CN=" + name + " CA", "-config", cnf, "-extensions", "v3_ca"},
		{"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
			"-subj", "/CN=" + name + " TSA", "-config", cnf},
		{"x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "tsa.crt",
			"-days", "825", "-extfile", cnf, "-extensions", "v3_tsa"},
	} {
		Openssl(tb, dir, args...)
	}
	t.Start(tb)
	tb.Cleanup(t.Stop)
	return t
}

// Openssl runs openssl in dir and fails the test if it fails; it returns
// the combined output.
func Openssl(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	out, err := RunOpenssl(dir, args...)
	if err != nil {
		tb.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// RunOpenssl runs openssl in dir and returns its combined output.
func RunOpenssl(dir string, args ...string) (string, error) {
	path, err := exec.LookPath("openssl")
	if err != nil {
		return "", fmt.Errorf("openssl is not installed (apt-get install openssl): %w", err)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Reply answers a DER TimeStampReq with openssl ts -reply and returns the
// DER TimeStampResp.
func (t *TSA) Reply(query []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	q, err := os.CreateTemp(t.Dir, "q-*.tsq")
	if err != nil {
		return nil, err
	}
	defer os.Remove(q.Name())
	if _, err := q.Write(query); err != nil {
		q.Close()
		return nil, err
	}
	q.Close()
	r := strings.TrimSuffix(q.Name(), ".tsq") + ".tsr"
	defer os.Remove(r)
	if out, err := RunOpenssl(t.Dir, "ts", "-reply", "-config", filepath.Join(t.Dir, "tsa.cnf"), "-queryfile", q.Name(), "-out", r); err != nil {
		return nil, fmt.Errorf("openssl ts -reply: %v: %s", err, out)
	}
	return os.ReadFile(r)
}

// ServeHTTP is the TSA's HTTP face (RFC 3161 §3.4).
func (t *TSA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST a TimeStampReq", http.StatusMethodNotAllowed)
		return
	}
	q, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp, err := t.Reply(q)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/timestamp-reply")
	w.Write(resp)
}

// Start serves the TSA; after a Stop it comes back on the same address.
func (t *TSA) Start(tb testing.TB) {
	tb.Helper()
	addr := t.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the old socket may linger a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("tsa listen on %s: %v", addr, err)
	}
	s := httptest.NewUnstartedServer(t)
	s.Listener.Close()
	s.Listener = ln
	s.Start()
	t.server = s
	t.addr = ln.Addr().String()
	t.URL = s.URL
}

// Stop closes the TSA's port: it is down until Start.
func (t *TSA) Stop() {
	if t.server != nil {
		t.server.Close()
		t.server = nil
	}
}

// FindNodeBin walks up from the working directory to the first
// node_modules/.bin/name and returns its path.
func FindNodeBin(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "node_modules", ".bin", name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("node_modules/.bin/%s not found above the package directory", name)
		}
		dir = parent
	}
}

var listening = regexp.MustCompile(`Listening on (127\.0\.0\.1:\d+)`)

// StartAnvil starts a fresh anvil dev chain on a free port and returns its
// JSON-RPC URL. It fails the test (it does not skip) when anvil is missing.
func StartAnvil(tb testing.TB) string {
	tb.Helper()
	bin, err := FindNodeBin("anvil")
	if err != nil {
		tb.Fatalf("anvil is needed for this test: %v; run `npm ci` (or `make deps`) in the repository root", err)
	}
	cmd := exec.Command(bin, "--host", "127.0.0.1", "--port", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the npm wrapper spawns the real binary
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start anvil: %v", err)
	}
	pgid := cmd.Process.Pid
	tb.Cleanup(func() {
		syscall.Kill(-pgid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case addr, ok := <-found:
		if !ok {
			tb.Fatalf("anvil exited before listening: %s", stderr.String())
		}
		return "http://" + addr
	case <-ctx.Done():
		tb.Fatalf("anvil did not say where it listens within 30 s: %s", stderr.String())
	}
	return ""
}
