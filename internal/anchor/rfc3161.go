package anchor

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/digitorus/pkcs7"
	"github.com/digitorus/timestamp"

	"braid/internal/errs"
	"braid/internal/events"
)

// RFC3161Name is the witness name of a timestamp authority.
const RFC3161Name = "rfc3161"

// maxTSAReply bounds what we read from a timestamp authority.
const maxTSAReply = 1 << 20

// RFC3161 is an RFC 3161 timestamp authority reached over HTTP.
//
// The message imprint is the head hash itself: hash algorithm SHA-256,
// hashed message = the 32 raw bytes of the head hash (the braid hash is
// already a SHA-256 digest; nothing is hashed again). So
//
//	openssl ts -verify -digest <head hash hex> -in receipt.tsr -CAfile roots.pem
//
// checks a stored receipt with no Braid code at all.
type RFC3161 struct {
	// URL is where TimeStampReqs are POSTed. Empty for a checker only.
	URL string
	// Roots are the trusted roots for the TSA's certificate chain. With nil
	// roots Anchor still checks the imprint, the nonce and the signature by
	// the certificate in the reply, but not who signed; Check refuses.
	Roots *x509.CertPool
	// Client does the HTTP; nil uses a client with a 30 s timeout.
	Client *http.Client
	// Root, when set, gives the tree root at the head's position: the
	// imprint is then DigestV2 (head and root), else the head hash (v1).
	// Check accepts either, so receipts made before the tree still hold.
	Root RootFunc
}

// Name returns "rfc3161".
func (*RFC3161) Name() string { return RFC3161Name }

// LoadRoots reads a PEM file of trusted root certificates.
func LoadRoots(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tsa roots: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tsa roots %s: %w", path, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errs.E(errs.Invalid, "tsa roots %s: no PEM certificate found", path)
	}
	return pool, nil
}

// Anchor sends a TimeStampReq for head (with a random nonce, asking for the
// TSA's certificates) and returns the DER TimeStampResp as the authority sent
// it, after checking that it is a granted token over head carrying our nonce,
// and, when Roots is set, that it chains to Roots.
func (w *RFC3161) Anchor(ctx context.Context, head events.Head) (Receipt, error) {
	if w.URL == "" {
		return Receipt{}, errs.E(errs.Invalid, "rfc3161: no --tsa-url given")
	}
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return Receipt{}, fmt.Errorf("rfc3161: nonce: %w", err)
	}
	imprint := head.Hash[:]
	root, v2, err := rootAt(ctx, w.Root, head)
	if err != nil {
		return Receipt{}, fmt.Errorf("rfc3161: %w", err)
	}
	if v2 {
		d := DigestV2(head, root)
		imprint = d[:]
	}
	req := timestamp.Request{
		HashAlgorithm: crypto.SHA256,
		HashedMessage: imprint,
		Certificates:  true,
		Nonce:         nonce,
	}
	body, err := req.Marshal()
	if err != nil {
		return Receipt{}, fmt.Errorf("rfc3161: encode request: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return Receipt{}, errs.E(errs.Invalid, "rfc3161: bad --tsa-url: %v", err)
	}
	hreq.Header.Set("Content-Type", "application/timestamp-query")
	hreq.Header.Set("Accept", "application/timestamp-reply")
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	res, err := client.Do(hreq)
	if err != nil {
		return Receipt{}, fmt.Errorf("rfc3161: ask %s: %w", w.URL, err)
	}
	defer res.Body.Close()
	der, err := io.ReadAll(io.LimitReader(res.Body, maxTSAReply+1))
	if err != nil {
		return Receipt{}, fmt.Errorf("rfc3161: read reply from %s: %w", w.URL, err)
	}
	if res.StatusCode >= 500 {
		// The authority is there but not working: worth another try.
		return Receipt{}, fmt.Errorf("rfc3161: %s answered HTTP %d", w.URL, res.StatusCode)
	}
	if res.StatusCode != http.StatusOK {
		return Receipt{}, refused("rfc3161: %s answered HTTP %d", w.URL, res.StatusCode)
	}
	if len(der) > maxTSAReply {
		return Receipt{}, refused("rfc3161: reply from %s is larger than %d bytes", w.URL, maxTSAReply)
	}
	// RFC 3161 §3.4 names application/timestamp-reply; some authorities
	// still send the draft name application/timestamp-response.
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/timestamp-reply") &&
		!strings.HasPrefix(ct, "application/timestamp-response") {
		return Receipt{}, refused("rfc3161: reply from %s has content type %q, want application/timestamp-reply", w.URL, ct)
	}
	ts, err := w.verify(head, der, imprint)
	if err != nil {
		return Receipt{}, err
	}
	if ts.Nonce == nil || ts.Nonce.Cmp(nonce) != 0 {
		return Receipt{}, refused("rfc3161: reply carries nonce %v, want %v (a replayed or mixed-up token)", ts.Nonce, nonce)
	}
	r := Receipt{Witness: RFC3161Name, Data: der, Details: tsDetails(ts)}
	r.Details["url"] = w.URL
	if v2 {
		// Only said for v2, so a v1 receipt's details read as before.
		r.Details["imprint"] = "v2"
		r.Details["root"] = base64.StdEncoding.EncodeToString(root[:])
	}
	if w.Roots == nil {
		r.Details["chain"] = "not checked: no --tsa-roots given"
	} else {
		r.Details["chain"] = "checked"
	}
	return r, nil
}

// Check verifies that r is a granted timestamp over head, signed by a
// certificate with the timeStamping extended key usage that chains to Roots
// at the time of the stamp.
func (w *RFC3161) Check(ctx context.Context, head events.Head, r Receipt) error {
	if w.Roots == nil {
		return errs.E(errs.Invalid, "rfc3161: cannot check a receipt without --tsa-roots")
	}
	imprints := [][]byte{head.Hash[:]}
	root, ok, err := rootAt(ctx, w.Root, head)
	if err != nil {
		return err
	}
	if ok {
		d := DigestV2(head, root)
		imprints = append(imprints, d[:])
	}
	_, err = w.verify(head, r.Data, imprints...)
	return err
}

// verify parses a DER TimeStampResp and checks it against head: the
// imprint, the signature, and (when Roots is set) the chain.
func (w *RFC3161) verify(head events.Head, der []byte, imprints ...[]byte) (*timestamp.Timestamp, error) {
	// ParseResponse refuses non-granted statuses and checks the signature
	// when the token carries certificates, but never the chain.
	ts, err := timestamp.ParseResponse(der)
	if err != nil {
		return nil, refused("rfc3161: not a granted timestamp: %v", err)
	}
	if ts.HashAlgorithm != crypto.SHA256 {
		return nil, refused("rfc3161: token imprint uses %v, want SHA-256", ts.HashAlgorithm)
	}
	if !slices.ContainsFunc(imprints, func(b []byte) bool { return bytes.Equal(ts.HashedMessage, b) }) {
		if len(imprints) > 1 {
			return nil, refused("rfc3161: token is over %x, want head hash %s at position %d or the v2 digest of it and the tree root (%x)", ts.HashedMessage, hexHash(head.Hash), head.Position, imprints[1])
		}
		return nil, refused("rfc3161: token is over %x, want head hash %s at position %d", ts.HashedMessage, hexHash(head.Hash), head.Position)
	}
	p7, err := pkcs7.Parse(ts.RawToken)
	if err != nil {
		return nil, refused("rfc3161: token signature: %v", err)
	}
	if len(p7.Certificates) == 0 {
		return nil, refused("rfc3161: token carries no certificates (the request asked for them)")
	}
	inter := x509.NewCertPool()
	for _, c := range p7.Certificates {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{
		Intermediates: inter,
		CurrentTime:   ts.Time,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	}
	if w.Roots != nil {
		// pkcs7 checks the chain only when Roots is not nil.
		opts.Roots = w.Roots
	}
	if err := p7.VerifyWithOpts(opts); err != nil {
		return nil, refused("rfc3161: token signature: %v", err)
	}
	// x509 treats a certificate without any extended key usage as good for
	// every usage, so make timeStamping an explicit condition on the signer,
	// as RFC 3161 §2.3 asks of a TSA certificate.
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, refused("rfc3161: token has %d signers, want 1", len(p7.Signers))
	}
	if !hasTimeStamping(signer) {
		return nil, refused("rfc3161: signer %q lacks the timeStamping extended key usage", signer.Subject.CommonName)
	}
	return ts, nil
}

func hasTimeStamping(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageTimeStamping {
			return true
		}
	}
	return false
}

func tsDetails(ts *timestamp.Timestamp) map[string]string {
	d := map[string]string{
		"tsa_time": ts.Time.UTC().Format(time.RFC3339Nano),
		"policy":   ts.Policy.String(),
	}
	if ts.SerialNumber != nil {
		d["serial"] = ts.SerialNumber.String()
	}
	for _, c := range ts.Certificates {
		if hasTimeStamping(c) {
			d["tsa"] = c.Subject.String()
			break
		}
	}
	return d
}
