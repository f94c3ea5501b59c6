package events

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
)

// Event is one row of the log.
type Event struct {
	Position      int64
	AggregateType string
	AggregateID   string
	Version       int64
	Type          string
	Schema        int
	Actor         string
	OccurredAt    string
	CommandID     string
	Data          []byte
	ParentHash    [32]byte
	Hash          [32]byte

	// Format is the braid format the hash follows: 1 (the body holds
	// Data) or 2 (the body holds Commitment; Data and Salt live in the
	// payloads table). 0 reads as 1.
	Format int
	// Commitment is PayloadCommitment(Salt, Data) for a v2 event, as
	// stored beside it; zero for v1.
	Commitment [32]byte
	// Salt is the v2 payload's 32 random bytes; nil for v1 and for an
	// erased payload.
	Salt []byte
	// ErasedBy is the position of the erased event that erased this v2
	// payload, 0 when it is not erased. Data then holds the kept remnant
	// (the structure without personal fields), not what was committed to.
	ErasedBy int64
}

// V2 reports whether e follows braid format 2.
func (e *Event) V2() bool { return e.Format == 2 }

// HashPrefix opens every braid v1 body.
const HashPrefix = "braid/v1\n"

// HashPrefixV2 opens every braid v2 body.
const HashPrefixV2 = "braid/v2\n"

// PayloadPrefix opens the bytes a v2 payload commitment hashes.
const PayloadPrefix = "braid/v2 payload\n"

// SaltSize is the length of a v2 payload's salt.
const SaltSize = 32

// PayloadCommitment returns SHA-256("braid/v2 payload\n" || salt || data),
// the commitment a v2 event's hash covers in place of its payload.
func PayloadCommitment(salt, data []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(PayloadPrefix))
	h.Write(salt)
	h.Write(data)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// NewSalt returns SaltSize bytes from crypto/rand.
func NewSalt() []byte {
	b := make([]byte, SaltSize)
	rand.Read(b)
	return b
}

// SealV2 makes e a v2 event over its Data: a fresh salt, the commitment
// and Format 2. The caller computes the hash after.
func (e *Event) SealV2() {
	e.Format = 2
	e.Salt = NewSalt()
	e.Commitment = PayloadCommitment(e.Salt, e.Data)
}

// TimeFormat is how occurred_at is written: UTC, nanoseconds, always nine digits.
const TimeFormat = "2006-01-02T15:04:05.000000000Z"

// Body appends the braid body of e (see docs/braid.md) to buf and returns
// it: v1 holds len(data) || data, v2 the 32 commitment bytes in its place.
func (e *Event) Body(buf []byte) []byte {
	v2 := e.Format == 2
	if v2 {
		buf = append(buf, HashPrefixV2...)
	} else {
		buf = append(buf, HashPrefix...)
	}
	buf = binary.BigEndian.AppendUint64(buf, uint64(e.Position))
	buf = appendStr(buf, e.AggregateType)
	buf = appendStr(buf, e.AggregateID)
	buf = binary.BigEndian.AppendUint64(buf, uint64(e.Version))
	buf = appendStr(buf, e.Type)
	buf = binary.BigEndian.AppendUint64(buf, uint64(e.Schema))
	buf = appendStr(buf, e.Actor)
	buf = appendStr(buf, e.OccurredAt)
	buf = appendStr(buf, e.CommandID)
	if v2 {
		buf = append(buf, e.Commitment[:]...)
	} else {
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(e.Data)))
		buf = append(buf, e.Data...)
	}
	buf = append(buf, e.ParentHash[:]...)
	return buf
}

func appendStr(buf []byte, s string) []byte {
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(s)))
	return append(buf, s...)
}

// ComputeHash returns SHA-256 of the braid body of e (v1 or v2 by Format).
func (e *Event) ComputeHash() [32]byte {
	return sha256.Sum256(e.Body(make([]byte, 0, 256+len(e.Data))))
}

// hasher computes braid hashes reusing one buffer and one SHA-256 state,
// so a long verification does not allocate per event.
type hasher struct {
	buf []byte
	h   hash.Hash
	sum [32]byte
}

func newHasher() *hasher { return &hasher{buf: make([]byte, 0, 4096), h: sha256.New()} }

func (h *hasher) hash(e *Event) [32]byte {
	h.buf = e.Body(h.buf[:0])
	h.h.Reset()
	h.h.Write(h.buf)
	h.h.Sum(h.sum[:0])
	return h.sum
}

// Short returns the first 12 hex digits of a hash, as shown on pages.
func Short(h [32]byte) string { return hex.EncodeToString(h[:6]) }

// Hex returns the full lowercase hex of a hash.
func Hex(h [32]byte) string { return hex.EncodeToString(h[:]) }
