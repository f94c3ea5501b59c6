package events

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
	"unicode/utf8"

	"braid/internal/errs"
)

// exportLine is one line of an export: the log's columns as keys (see
// CONTRACT.md, Export). Field order is the column order.
type exportLine struct {
	Position      *int64  `json:"position"`
	AggregateType *string `json:"aggregate_type"`
	AggregateID   *string `json:"aggregate_id"`
	Version       *int64  `json:"version"`
	EventType     *string `json:"event_type"`
	Schema        *int    `json:"schema"`
	Actor         *string `json:"actor"`
	OccurredAt    *string `json:"occurred_at"`
	CommandID     *string `json:"command_id"`
	Data          *string `json:"data"`
	ParentHash    *string `json:"parent_hash"`
	Hash          *string `json:"hash"`
	// Braid v2 (docs/braid.md): format 2, the commitment the hash covers
	// and, while the payload is there, its salt; an erased payload has
	// data null, erased_by (the erased event's position), no salt and,
	// when there is one, the kept remnant. All absent on a v1 line.
	Format     *int    `json:"format,omitempty"`
	Salt       *string `json:"salt,omitempty"`
	Commitment *string `json:"commitment,omitempty"`
	ErasedBy   *int64  `json:"erased_by,omitempty"`
	Kept       *string `json:"kept,omitempty"`
	// Raw carries, in standard base64, the exact bytes of each text column
	// whose value is not valid UTF-8 and so cannot travel byte for byte as
	// a JSON string; the column's own key then holds a readable copy with
	// each invalid byte replaced by U+FFFD. Absent when every value is
	// valid UTF-8 (nearly always).
	Raw map[string]string `json:"raw,omitempty"`
}

// textColumns are the columns of an export line that hold text: the ones
// raw may carry.
var textColumns = []string{"aggregate_type", "aggregate_id", "event_type", "actor", "occurred_at", "command_id", "data", "kept"}

// textFields returns pointers to e's text fields, in textColumns order
// (data and kept as strings).
func textFields(e *Event, data, kept *string) []*string {
	return []*string{&e.AggregateType, &e.AggregateID, &e.Type, &e.Actor, &e.OccurredAt, &e.CommandID, data, kept}
}

// readable is s with each byte that is not part of valid UTF-8 replaced by
// U+FFFD, as encoding/json writes it.
func readable(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string([]rune(s))
}

// MarshalJSON writes the event as one line of an export: the log's columns
// as keys, data a JSON string holding the exact payload bytes, hashes in
// lowercase hex. Pages answering JSON use the same form.
func (e Event) MarshalJSON() ([]byte, error) {
	data, ph, h := string(e.Data), Hex(e.ParentHash), Hex(e.Hash)
	l := exportLine{Position: &e.Position, AggregateType: &e.AggregateType, AggregateID: &e.AggregateID,
		Version: &e.Version, EventType: &e.Type, Schema: &e.Schema, Actor: &e.Actor, OccurredAt: &e.OccurredAt,
		CommandID: &e.CommandID, Data: &data, ParentHash: &ph, Hash: &h}
	var kept string
	if e.Format == 2 {
		format, commitment := 2, Hex(e.Commitment)
		l.Format, l.Commitment = &format, &commitment
		if e.ErasedBy != 0 {
			kept, data = data, ""
			l.Data, l.ErasedBy = nil, &e.ErasedBy
			if kept != "" {
				l.Kept = &kept
			}
		} else {
			salt := hex.EncodeToString(e.Salt)
			l.Salt = &salt
		}
	}
	// A value that is not valid UTF-8 cannot be a JSON string byte for
	// byte: escape it in raw rather than refuse (an export must never be
	// stopped by what the log already holds).
	for i, f := range textFields(&e, &data, &kept) {
		if !utf8.ValidString(*f) {
			if l.Raw == nil {
				l.Raw = map[string]string{}
			}
			l.Raw[textColumns[i]] = base64.StdEncoding.EncodeToString([]byte(*f))
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the payload's bytes as they are, not \u003c
	if err := enc.Encode(&l); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Export writes every event of the log in q as JSON Lines, in position
// order, and returns how many it wrote. It streams: the log is never held in
// memory. data is a JSON string holding the exact payload bytes; hashes are
// lowercase hex; a text value that is not valid UTF-8 also travels in raw
// (see exportLine), so every event can be exported.
func Export(ctx context.Context, q Querier, w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	var n int64
	err := Scan(ctx, q, 0, func(e *Event) error {
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("export event %d: %w", e.Position, err)
		}
		n++
		return nil
	})
	if err != nil {
		return n, err
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("export: %w", err)
	}
	return n, nil
}

// ReadExport reads an export from r and calls fn with each event in file
// order. A line that is not a complete event is an invalid error naming its
// line number; an error from fn stops the reading and is returned as is.
// A line longer than MaxLine is refused without reading the rest of it.
// The *Event passed to fn is reused: copy what must outlive the call.
func ReadExport(r io.Reader, fn func(line int64, e *Event) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var e Event
	var buf []byte
	for line := int64(1); ; line++ {
		buf = buf[:0]
		for {
			chunk, err := br.ReadSlice('\n')
			if len(buf)+len(chunk) > MaxLine {
				return errs.E(errs.Invalid, "line %d is longer than 8 MiB", line)
			}
			buf = append(buf, chunk...)
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err == io.EOF {
				if len(bytes.TrimSpace(buf)) == 0 {
					return nil
				}
				break
			}
			if err != nil {
				return fmt.Errorf("read export line %d: %w", line, err)
			}
			break
		}
		if err := decodeLine(buf, &e); err != nil {
			return errs.E(errs.Invalid, "line %d: %v", line, err)
		}
		if err := fn(line, &e); err != nil {
			return err
		}
	}
}

// MaxLine is the longest export line a reader accepts, newline included:
// far above any event the site can write (a request body is at most 1 MB,
// which escaped and doubled in raw stays under it), low enough that a
// hostile file cannot exhaust memory.
const MaxLine = 8 << 20

func decodeLine(b []byte, e *Event) error {
	var l exportLine
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return fmt.Errorf("not a JSON event: %v", err)
	}
	if dec.More() {
		return errors.New("more than one JSON value on the line")
	}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"position", l.Position != nil}, {"aggregate_type", l.AggregateType != nil}, {"aggregate_id", l.AggregateID != nil},
		{"version", l.Version != nil}, {"event_type", l.EventType != nil}, {"schema", l.Schema != nil},
		{"actor", l.Actor != nil}, {"occurred_at", l.OccurredAt != nil}, {"command_id", l.CommandID != nil},
		{"data", l.Data != nil || l.ErasedBy != nil}, {"parent_hash", l.ParentHash != nil}, {"hash", l.Hash != nil},
	} {
		if !f.set {
			return fmt.Errorf("key %q is missing", f.name)
		}
	}
	*e = Event{Position: *l.Position, AggregateType: *l.AggregateType, AggregateID: *l.AggregateID,
		Version: *l.Version, Type: *l.EventType, Schema: *l.Schema, Actor: *l.Actor,
		OccurredAt: *l.OccurredAt, CommandID: *l.CommandID}
	var data, kept string
	if l.Data != nil {
		data = *l.Data
	}
	if l.Kept != nil {
		kept = *l.Kept
	}
	if err := decodeV2(&l, e); err != nil {
		return err
	}
	if len(l.Raw) > 0 {
		fields := textFields(e, &data, &kept)
		for k, v := range l.Raw {
			i := slices.Index(textColumns, k)
			if i < 0 {
				return fmt.Errorf("raw: %q is not a text column", k)
			}
			b, err := base64.StdEncoding.Strict().DecodeString(v)
			if err != nil {
				return fmt.Errorf("raw %s: not standard base64: %v", k, err)
			}
			if utf8.Valid(b) {
				return fmt.Errorf("raw %s: the bytes are valid UTF-8 and belong in %q itself", k, k)
			}
			if (k == "data" && l.Data == nil) || (k == "kept" && l.Kept == nil) {
				return fmt.Errorf("raw %s: there is no %q on the line", k, k)
			}
			if readable(string(b)) != *fields[i] {
				return fmt.Errorf("raw %s: %q does not read as the raw bytes", k, k)
			}
			*fields[i] = string(b)
		}
	}
	e.Data = []byte(data)
	if e.ErasedBy != 0 {
		e.Data = []byte(kept)
	}
	if err := decodeHash(*l.ParentHash, &e.ParentHash); err != nil {
		return fmt.Errorf("parent_hash: %v", err)
	}
	if err := decodeHash(*l.Hash, &e.Hash); err != nil {
		return fmt.Errorf("hash: %v", err)
	}
	return nil
}

// decodeV2 reads the braid v2 keys of a line into e, refusing a
// combination no export writes.
func decodeV2(l *exportLine, e *Event) error {
	if l.Format == nil || *l.Format == 1 {
		if l.Salt != nil || l.Commitment != nil || l.ErasedBy != nil || l.Kept != nil {
			return errors.New("salt, commitment, erased_by and kept belong to format 2 lines only")
		}
		if l.Data == nil {
			return errors.New(`key "data" is missing`)
		}
		e.Format = 1
		return nil
	}
	if *l.Format != 2 {
		return fmt.Errorf("format %d: want 1 or 2", *l.Format)
	}
	e.Format = 2
	if l.Commitment == nil {
		return errors.New(`key "commitment" is missing (format 2)`)
	}
	if err := decodeHash(*l.Commitment, &e.Commitment); err != nil {
		return fmt.Errorf("commitment: %v", err)
	}
	if l.ErasedBy != nil {
		if l.Data != nil || l.Salt != nil {
			return errors.New("an erased payload (erased_by) has data null and no salt")
		}
		if *l.ErasedBy <= 0 {
			return errors.New("erased_by: want a position")
		}
		e.ErasedBy = *l.ErasedBy
		return nil
	}
	if l.Kept != nil {
		return errors.New("kept belongs to an erased payload (erased_by) only")
	}
	if l.Data == nil {
		return errors.New(`key "data" is missing`)
	}
	if l.Salt == nil {
		return errors.New(`key "salt" is missing (format 2)`)
	}
	var salt [SaltSize]byte
	if err := decodeHash(*l.Salt, &salt); err != nil {
		return fmt.Errorf("salt: %v", err)
	}
	e.Salt = salt[:]
	return nil
}

func decodeHash(s string, out *[32]byte) error {
	if len(s) != 64 {
		return fmt.Errorf("want 64 lowercase hex digits, found %d characters", len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("want lowercase hex, found %q", c)
		}
	}
	_, err := hex.Decode(out[:], []byte(s))
	return err
}

// VerifyExport checks an export read from r link by link with a Checker,
// with no database. A broken braid is a Report with Intact false; an error
// means the file could not be read as an export (its message names the
// line).
func VerifyExport(r io.Reader) (Report, error) {
	start := time.Now()
	c := NewChecker()
	err := ReadExport(r, func(_ int64, e *Event) error {
		if c.Add(e) != nil {
			return errStop
		}
		return nil
	})
	if err == nil {
		c.settle(context.Background(), nil)
	}
	if err != nil && !errors.Is(err, errStop) {
		return Report{}, err
	}
	rep := c.Report()
	rep.Took = time.Since(start)
	return rep, nil
}

// Import loads an export into db, whose log must be empty: it checks every
// event with a Checker as it goes, inserts each as it is (the same bytes and
// hashes), applies it through every projection of reg (the functions the
// writer uses) and sets every checkpoint, all in one transaction. A broken
// braid rolls everything back and returns a *BrokenError; nothing is left
// half imported. It takes db's write connection: no Writer may be running
// on db.
func Import(ctx context.Context, db *DB, reg *Registry, r io.Reader) (Report, error) {
	start := time.Now()
	conn, err := db.Write.Conn(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("import: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return Report{}, fmt.Errorf("import: begin: %w", err)
	}
	done := false
	defer func() {
		if !done {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	var existing int64
	if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM events LIMIT 1)`).Scan(&existing); err != nil {
		return Report{}, fmt.Errorf("import: %w", err)
	}
	if existing > 0 {
		return Report{}, errs.E(errs.Conflict, "the database already has events: import only into a new one")
	}
	ins, err := prepareInsert(ctx, conn)
	if err != nil {
		return Report{}, fmt.Errorf("import: %w", err)
	}
	defer ins.close()
	c := NewChecker()
	var lastCmd string
	var idx int64
	err = ReadExport(r, func(_ int64, e *Event) error {
		if f := c.Add(e); f != nil {
			return &BrokenError{Failure: *f}
		}
		// command_index is not in the export: a command's events are
		// appended together, so it counts the run of equal command ids.
		if e.CommandID == lastCmd {
			idx++
		} else {
			lastCmd, idx = e.CommandID, 0
		}
		if err := ins.insert(ctx, e, idx); err != nil {
			return err
		}
		return reg.Apply(ctx, conn, e)
	})
	if err != nil {
		return Report{}, err
	}
	c.settle(ctx, nil)
	rep := c.Report()
	if rep.Failure != nil {
		return Report{}, &BrokenError{Failure: *rep.Failure}
	}
	if err := setCheckpoints(ctx, conn, reg, rep.Head.Position); err != nil {
		return Report{}, err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return Report{}, fmt.Errorf("import: commit: %w", err)
	}
	done = true
	rep.Took = time.Since(start)
	return rep, nil
}

// inserter writes an event received as it is (import, a mirror's pull):
// the events row and, for v2, its payloads row.
type inserter struct{ ev, pay *sql.Stmt }

func prepareInsert(ctx context.Context, q interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}) (*inserter, error) {
	ev, err := q.PrepareContext(ctx, `INSERT INTO events (position, aggregate_type, aggregate_id, version, event_type, schema, actor, occurred_at, command_id, command_index, data, parent_hash, hash, format, commitment) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return nil, err
	}
	pay, err := q.PrepareContext(ctx, `INSERT INTO payloads (position, salt, data, erased_by) VALUES (?,?,?,?)`)
	if err != nil {
		ev.Close()
		return nil, err
	}
	return &inserter{ev, pay}, nil
}

func (in *inserter) insert(ctx context.Context, e *Event, idx int64) error {
	data, format, commitment := string(e.Data), 1, []byte(nil)
	if e.Format == 2 {
		data, format, commitment = "", 2, e.Commitment[:]
	}
	if _, err := in.ev.ExecContext(ctx, e.Position, e.AggregateType, e.AggregateID, e.Version, e.Type, e.Schema,
		e.Actor, e.OccurredAt, e.CommandID, idx, data, e.ParentHash[:], e.Hash[:], format, commitment); err != nil {
		return fmt.Errorf("insert event %d: %w", e.Position, err)
	}
	if format == 2 {
		var erasedBy any
		if e.ErasedBy != 0 {
			erasedBy = e.ErasedBy
		}
		if _, err := in.pay.ExecContext(ctx, e.Position, e.Salt, string(e.Data), erasedBy); err != nil {
			return fmt.Errorf("insert payload %d: %w", e.Position, err)
		}
	}
	return nil
}

func (in *inserter) close() {
	in.ev.Close()
	in.pay.Close()
}

// setCheckpoints records that every projection of reg has applied the log up
// to position.
func setCheckpoints(ctx context.Context, q Querier, reg *Registry, position int64) error {
	for _, p := range reg.Projections() {
		if _, err := q.ExecContext(ctx, `INSERT INTO projection_checkpoints (name, position) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET position = excluded.position`, p.Name, position); err != nil {
			return fmt.Errorf("checkpoint %s: %w", p.Name, err)
		}
	}
	return nil
}
