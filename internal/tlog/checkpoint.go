package tlog

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"braid/internal/events"
)

// DefaultOrigin is the origin line of the log kept in the database at
// dbPath: "braid.local/" and the file's name without its extension
// (braid.db: "braid.local/braid").
func DefaultOrigin(dbPath string) string {
	name := strings.TrimSuffix(filepath.Base(dbPath), filepath.Ext(dbPath))
	var b strings.Builder
	for _, r := range name {
		if r > ' ' && r < 0x7f && r != '+' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		b.WriteString("braid")
	}
	return "braid.local/" + b.String()
}

// CheckOrigin refuses an origin that cannot be both a checkpoint's first
// line and a note key's name: empty, longer than 255 bytes, or with a
// space, a control character, a '+' or anything outside printable ASCII.
func CheckOrigin(origin string) error {
	if origin == "" || len(origin) > 255 {
		return fmt.Errorf("origin %q: want 1 to 255 characters", origin)
	}
	for _, r := range origin {
		if r <= ' ' || r >= 0x7f || r == '+' {
			return fmt.Errorf("origin %q: want printable ASCII without spaces or '+'", origin)
		}
	}
	return nil
}

// Key is the log's signing key.
type Key struct {
	Signer note.Signer
	VKey   string // the verifier key, in note's text form
	Origin string // the key's name, which is the log's origin line
}

// LoadOrCreateKey reads the note signing key at path, or makes one named
// origin and writes it there with mode 0600 when there is none yet. A key
// named other than origin is refused: the origin line and the key's name
// are one.
func LoadOrCreateKey(path, origin string) (Key, bool, error) {
	if err := CheckOrigin(origin); err != nil {
		return Key{}, false, err
	}
	k, err := ReadKey(path)
	if err == nil {
		if k.Origin != origin {
			return Key{}, false, fmt.Errorf("log key %s is for origin %q, not %q", path, k.Origin, origin)
		}
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Key{}, false, err
	}
	skey, _, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return Key{}, false, fmt.Errorf("make log key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Key{}, false, fmt.Errorf("write log key: %w", err)
	}
	_, werr := f.WriteString(skey + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return Key{}, false, fmt.Errorf("write log key %s: %w", path, err)
	}
	k, err = ReadKey(path)
	return k, err == nil, err
}

// ReadKey reads the note signing key at path.
func ReadKey(path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("read log key: %w", err)
	}
	skey := strings.TrimSpace(string(b))
	s, err := note.NewSigner(skey)
	if err != nil {
		return Key{}, fmt.Errorf("log key %s: %w", path, err)
	}
	vkey, err := verifierKey(skey)
	if err != nil {
		return Key{}, fmt.Errorf("log key %s: %w", path, err)
	}
	return Key{Signer: s, VKey: vkey, Origin: s.Name()}, nil
}

// verifierKey derives the verifier key from a note signing key
// ("PRIVATE+KEY+name+hash+base64(alg || seed)").
func verifierKey(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5) // base64 may hold a +
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("not a note signing key")
	}
	seed, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(seed) != 33 || seed[0] != 1 {
		return "", errors.New("not an Ed25519 note signing key")
	}
	// GenerateKey with the seed as its randomness gives the same key pair.
	_, vkey, err := note.GenerateKey(bytes.NewReader(seed[1:]), parts[2])
	if err != nil {
		return "", err
	}
	return vkey, nil
}

// FormatCheckpoint is the body of a checkpoint per C2SP tlog-checkpoint:
// the origin line, the size in decimal, the root in standard base64, each
// ended by a newline.
func FormatCheckpoint(origin string, h Head) []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", origin, h.Size, base64.StdEncoding.EncodeToString(h.Root[:]))
}

// ParseCheckpoint reads a checkpoint body (FormatCheckpoint's, with any
// extension lines after the root ignored).
func ParseCheckpoint(body []byte) (origin string, h Head, err error) {
	lines := strings.SplitN(string(body), "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return "", h, errors.New("checkpoint: want an origin, a size and a root line")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || lines[1] != strconv.FormatInt(n, 10) {
		return "", h, fmt.Errorf("checkpoint: size %q is not a decimal number", lines[1])
	}
	r, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(r) != len(h.Root) {
		return "", h, fmt.Errorf("checkpoint: root %q is not 32 bytes in base64", lines[2])
	}
	return lines[0], Head{Size: n, Root: Hash(r)}, nil
}

// Checkpoint is one signed checkpoint as kept in the checkpoints table.
type Checkpoint struct {
	Head
	Note     string // the signed note: body, blank line, signature lines
	SignedAt time.Time
}

// Latest returns the checkpoint of the largest size, and false when none
// was signed yet (or the database predates the table).
func Latest(ctx context.Context, q events.Querier) (Checkpoint, bool, error) {
	var c Checkpoint
	var root []byte
	var at string
	err := q.QueryRowContext(ctx, `SELECT size, root, note, signed_at FROM checkpoints ORDER BY size DESC LIMIT 1`).Scan(&c.Size, &root, &c.Note, &at)
	if errors.Is(err, sql.ErrNoRows) || (err != nil && strings.Contains(err.Error(), "no such table")) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("latest checkpoint: %w", err)
	}
	copy(c.Root[:], root)
	c.SignedAt, _ = time.Parse(time.RFC3339Nano, at)
	return c, true, nil
}

// Signer signs a checkpoint of the tree at most once per Every when the
// tree grew, off the writer's goroutine, and keeps each in the
// checkpoints table through Store (the writer's Exclusive: the log keeps
// one writer).
type Signer struct {
	Tree  *Tree
	Key   Key
	Store func(ctx context.Context, fn func(ctx context.Context, q events.Querier) error) error
	Every time.Duration // default one second
	Clock func() time.Time
	Log   *slog.Logger

	mu     sync.Mutex
	signed int64 // size of the last checkpoint kept, -1 for none
}

// Sign signs a checkpoint of h with the log's key: the body, a blank line
// and one signature line.
func (s *Signer) Sign(h Head) ([]byte, error) {
	return note.Sign(&note.Note{Text: string(FormatCheckpoint(s.Key.Origin, h))}, s.Key.Signer)
}

// Run signs the current head if no checkpoint covers it, then one each
// time the tree grows, at most once per Every, until ctx ends.
func (s *Signer) Run(ctx context.Context, latest int64) {
	every := s.Every
	if every <= 0 {
		every = time.Second
	}
	s.signed = latest
	last := time.Time{}
	for {
		if h := s.Tree.Head(); h.Size > s.signed || s.signed < 0 {
			if err := s.SignAndStore(ctx, h); err != nil && ctx.Err() == nil {
				s.log().Error("sign checkpoint", slog.Any("err", err))
			}
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-s.Tree.Grew():
		}
		if wait := every - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

// SignAndStore signs a checkpoint of h and keeps it.
func (s *Signer) SignAndStore(ctx context.Context, h Head) error {
	text, err := s.Sign(h)
	if err != nil {
		return err
	}
	clock := s.Clock
	if clock == nil {
		clock = time.Now
	}
	at := clock().UTC().Format(time.RFC3339Nano)
	err = s.Store(ctx, func(ctx context.Context, q events.Querier) error {
		_, err := q.ExecContext(ctx, `INSERT INTO checkpoints (size, root, note, signed_at) VALUES (?, ?, ?, ?) ON CONFLICT (size) DO NOTHING`,
			h.Size, h.Root[:], string(text), at)
		return err
	})
	if err != nil {
		return fmt.Errorf("keep checkpoint of size %d: %w", h.Size, err)
	}
	s.mu.Lock()
	s.signed = h.Size
	s.mu.Unlock()
	return nil
}

func (s *Signer) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}
