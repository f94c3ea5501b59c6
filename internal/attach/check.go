package attach

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"braid/internal/events"
)

// EventType is the event that attaches a file to a ticket (internal/tickets).
const EventType = "attachment_added"

// Ref is one attachment_added event: which file it names.
type Ref struct {
	Ticket   string
	Position int64
	SHA256   string
	Name     string
}

// Refs lists every attachment_added event of the log, in log order, with
// the hash and name its payload carries.
func Refs(ctx context.Context, q events.Querier) ([]Ref, error) {
	// The payload is the events row's (braid v1) or its payloads row's (v2).
	rows, err := q.QueryContext(ctx, `SELECT e.aggregate_id, e.position, COALESCE(json_extract(COALESCE(p.data, e.data), '$.sha256'), ''),
		COALESCE(json_extract(COALESCE(p.data, e.data), '$.name'), '')
		FROM events e LEFT JOIN payloads p ON p.position = e.position
		WHERE e.event_type = ? AND p.erased_by IS NULL ORDER BY e.position`, EventType) // an erased one's file is deleted with it
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Ref
	for rows.Next() {
		var r Ref
		if err := rows.Scan(&r.Ticket, &r.Position, &r.SHA256, &r.Name); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Problem is one referenced file that is missing or whose bytes no longer
// hash to what the event says.
type Problem struct {
	Ref
	Missing bool
}

func (p Problem) String() string {
	what := "altered"
	if p.Missing {
		what = "missing"
	}
	return fmt.Sprintf("attachment %q of ticket #%s (position %d): %s", p.Name, p.Ticket, p.Position, what)
}

// Check reads every blob an attachment_added event names and hashes its
// bytes: a blob that is absent, or whose SHA-256 differs from the event's,
// is a problem. Called after the braid check (the events themselves are
// the braid's business).
func Check(ctx context.Context, q events.Querier) (checked int, problems []Problem, err error) {
	return CheckFrom(ctx, q, 0)
}

// CheckFrom is Check of the attachment_added events at position from and
// after only (the /verify page's runs between two whole checks).
func CheckFrom(ctx context.Context, q events.Querier, from int64) (checked int, problems []Problem, err error) {
	refs, err := Refs(ctx, q)
	if err != nil {
		return 0, nil, err
	}
	seen := map[string]bool{} // hash → its bytes match
	for _, r := range refs {
		if r.Position < from {
			continue
		}
		ok, done := seen[r.SHA256]
		if !done {
			var data []byte
			err := q.QueryRowContext(ctx, `SELECT data FROM blobs WHERE sha256 = ?`, r.SHA256).Scan(&data)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				problems = append(problems, Problem{Ref: r, Missing: true})
				continue
			case err != nil:
				return checked, problems, err
			}
			sum := sha256.Sum256(data)
			ok = hex.EncodeToString(sum[:]) == r.SHA256
			seen[r.SHA256] = ok
			checked++
		}
		if !ok {
			problems = append(problems, Problem{Ref: r})
		}
	}
	return checked, problems, nil
}

// WriteDir writes every referenced blob into dir, one file per hash (the
// file's name is its SHA-256), creating dir. It returns how many it wrote.
func WriteDir(ctx context.Context, q events.Querier, dir string) (int, error) {
	refs, err := Refs(ctx, q)
	if err != nil {
		return 0, err
	}
	if len(refs) == 0 {
		return 0, nil // no attachments: no directory either
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	n, done := 0, map[string]bool{}
	for _, r := range refs {
		if done[r.SHA256] || !ValidSHA(r.SHA256) {
			continue
		}
		done[r.SHA256] = true
		b, err := Get(ctx, q, r.SHA256)
		if err != nil {
			return n, fmt.Errorf("attachment %q of ticket #%s (position %d): %w", r.Name, r.Ticket, r.Position, err)
		}
		if err := os.WriteFile(filepath.Join(dir, r.SHA256), b.Data, 0o644); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// ReadDir restores the blobs the log references from dir (as WriteDir
// left it): each file's bytes must hash to its name. A referenced file
// absent from dir is an error naming it, as is one whose bytes differ.
// The type stored is sniffed again from the bytes, as at upload.
func ReadDir(ctx context.Context, q events.Querier, dir string, now string) (int, error) {
	refs, err := Refs(ctx, q)
	if err != nil {
		return 0, err
	}
	n, done := 0, map[string]bool{}
	for _, r := range refs {
		if done[r.SHA256] || !ValidSHA(r.SHA256) {
			continue
		}
		done[r.SHA256] = true
		data, err := os.ReadFile(filepath.Join(dir, r.SHA256))
		if errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("attachment %q of ticket #%s (position %d): missing from %s", r.Name, r.Ticket, r.Position, dir)
		}
		if err != nil {
			return n, err
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != r.SHA256 {
			return n, fmt.Errorf("attachment %q of ticket #%s (position %d): altered (%s does not hash to its name)", r.Name, r.Ticket, r.Position, filepath.Join(dir, r.SHA256))
		}
		var ct string
		if err := q.QueryRowContext(ctx, `SELECT COALESCE(json_extract(COALESCE(p.data, e.data), '$.content_type'), '')
			FROM events e LEFT JOIN payloads p ON p.position = e.position WHERE e.position = ?`, r.Position).Scan(&ct); err != nil {
			return n, err
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO blobs (sha256, size, content_type, data, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (sha256) DO NOTHING`, r.SHA256, len(data), ct, data, now); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
