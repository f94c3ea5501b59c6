package tlog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// A witness cosignature per C2SP tlog-cosignature (cosignature/v1): a
// note signature line on the checkpoint by the witness's key, whose
// signature bytes are an 8-byte big-endian UNIX time then the Ed25519
// signature of "cosignature/v1\ntime <T>\n" followed by the checkpoint
// body. The verifier key is "name+hash+base64(0x04 || public key)", the
// key hash the first 4 bytes of SHA-256(name || "\n" || 0x04 || key).

const algCosignatureV1 = 0x04

// NewCosignatureVerifier reads a witness's cosignature/v1 verifier key.
func NewCosignatureVerifier(vkey string) (note.Verifier, error) {
	name, hash, key, err := splitKey(vkey)
	if err != nil {
		return nil, err
	}
	if len(key) != 1+ed25519.PublicKeySize || key[0] != algCosignatureV1 {
		return nil, fmt.Errorf("verifier key %q: not a cosignature/v1 (Ed25519) key", vkey)
	}
	if cosigKeyHash(name, key[1:]) != hash {
		return nil, fmt.Errorf("verifier key %q: its hash does not match its name and key", vkey)
	}
	return cosigVerifier{name: name, hash: hash, key: ed25519.PublicKey(key[1:])}, nil
}

func splitKey(vkey string) (string, uint32, []byte, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	h, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || name == "" || len(h) != 8 {
		return "", 0, nil, fmt.Errorf("verifier key %q: want name+hash+key", vkey)
	}
	hash, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return "", 0, nil, fmt.Errorf("verifier key %q: hash %q is not 8 hex digits", vkey, h)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", 0, nil, fmt.Errorf("verifier key %q: key is not base64", vkey)
	}
	return name, uint32(hash), key, nil
}

func cosigKeyHash(name string, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func cosignedMessage(t uint64, msg []byte) []byte {
	return append(fmt.Appendf(nil, "cosignature/v1\ntime %d\n", t), msg...)
}

type cosigVerifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (v cosigVerifier) Name() string    { return v.name }
func (v cosigVerifier) KeyHash() uint32 { return v.hash }
func (v cosigVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(v.key, cosignedMessage(binary.BigEndian.Uint64(sig), msg), sig[8:])
}

// Cosigner makes cosignature/v1 signatures, as a witness does (tests and
// benchmarks; a real witness runs elsewhere).
type Cosigner struct {
	name  string
	hash  uint32
	priv  ed25519.PrivateKey
	Clock func() time.Time
}

// NewCosigner makes a witness key named name from rand and returns its
// signer and verifier key.
func NewCosigner(rand io.Reader, name string) (*Cosigner, string, error) {
	if name == "" || strings.ContainsAny(name, "+ \n") {
		return nil, "", errors.New("cosigner: bad name")
	}
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, "", err
	}
	h := cosigKeyHash(name, pub)
	vkey := fmt.Sprintf("%s+%08x+%s", name, h, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, pub...)))
	return &Cosigner{name: name, hash: h, priv: priv}, vkey, nil
}

func (s *Cosigner) Name() string    { return s.name }
func (s *Cosigner) KeyHash() uint32 { return s.hash }
func (s *Cosigner) Sign(msg []byte) ([]byte, error) {
	clock := s.Clock
	if clock == nil {
		clock = time.Now
	}
	t := uint64(clock().Unix())
	sig := binary.BigEndian.AppendUint64(nil, t)
	return append(sig, ed25519.Sign(s.priv, cosignedMessage(t, msg))...), nil
}

// Cosign adds the cosigners' signature lines to a signed note.
func Cosign(signed []byte, cosigners ...*Cosigner) ([]byte, error) {
	n, err := note.Open(signed, note.VerifierList())
	var unv *note.UnverifiedNoteError
	if errors.As(err, &unv) {
		n, err = unv.Note, nil
	}
	if err != nil {
		return nil, err
	}
	// Keep the existing lines: Sign re-emits them after n.Text.
	n.Sigs, n.UnverifiedSigs = append(n.Sigs, n.UnverifiedSigs...), nil
	signers := make([]note.Signer, len(cosigners))
	for i, c := range cosigners {
		signers[i] = c
	}
	return note.Sign(n, signers...)
}
