package tlog

import (
	"bytes"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// FuzzParseCheckpoint: a checkpoint body that parses formats back to the
// same first three lines.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("example.org/braid\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
	f.Add([]byte("o\n-1\nx\n"))
	f.Add([]byte("o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nextra\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		origin, h, err := ParseCheckpoint(body)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(body, FormatCheckpoint(origin, h)) {
			t.Errorf("%q parsed as %q %d %x, which formats differently", body, origin, h.Size, h.Root)
		}
	})
}

// FuzzVerifyBundle: bytes that are not a bundle signed by the key are
// refused, never accepted and never a panic.
func FuzzVerifyBundle(f *testing.F) {
	skey, vkey, err := note.GenerateKey(nil, "fuzz.example/braid")
	if err != nil {
		f.Fatal(err)
	}
	_ = skey
	v, err := note.NewVerifier(vkey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":"braid-proof-bundle/v1"}`))
	f.Add([]byte(`{"format":"braid-proof-bundle/v1","checkpoint":"x","events":[{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := VerifyBundle(data, v)
		if err == nil && c.OK {
			t.Errorf("accepted a bundle not signed by the key: %q", data)
		}
	})
}
