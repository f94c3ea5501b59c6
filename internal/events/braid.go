package events

import (
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
}

// HashPrefix opens every braid v1 body.
const HashPrefix = "braid/v1\n"

// TimeFormat is how occurred_at is written: UTC, nanoseconds, always nine digits.
const TimeFormat = "2006-01-02T15:04:05.000000000Z"

// Body appends the braid v1 body of e (see docs/braid.md) to buf and returns it.
func (e *Event) Body(buf []byte) []byte {
	buf = append(buf, HashPrefix...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(e.Position))
	buf = appendStr(buf, e.AggregateType)
	buf = appendStr(buf, e.AggregateID)
	buf = binary.BigEndian.AppendUint64(buf, uint64(e.Version))
	buf = appendStr(buf, e.Type)
	buf = binary.BigEndian.AppendUint64(buf, uint64(e.Schema))
	buf = appendStr(buf, e.Actor)
	buf = appendStr(buf, e.OccurredAt)
	buf = appendStr(buf, e.CommandID)
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(e.Data)))
	buf = append(buf, e.Data...)
	buf = append(buf, e.ParentHash[:]...)
	return buf
}

func appendStr(buf []byte, s string) []byte {
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(s)))
	return append(buf, s...)
}

// ComputeHash returns SHA-256 of the braid v1 body of e.
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
