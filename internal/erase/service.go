package erase

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"braid/internal/events"
)

// Service runs erasures through the writer.
type Service struct {
	DB     *events.DB
	Writer *events.Writer
	Types  Types
}

// Result is what an erasure did.
type Result struct {
	Plan
	Position int64 // the `erased` event's
	Repeated bool  // the same command had been sent before: nothing new was erased
	// CheckpointErr says the WAL could not be checkpointed right after
	// (a busy reader): the old bytes leave it at the next checkpoint.
	CheckpointErr error
}

// Erase erases what r names, as actor, in one writer transaction: it
// appends the `erased` event (whose projection handlers blank the rows
// that showed the text), replaces each payload by its remnant
// (events.ErasePayload) and compacts the search index; then it has the
// freed bytes overwritten and the WAL checkpointed (events.SecureDelete).
// cmdID is the command's idempotency key, or "" for a fresh one.
func (s *Service) Erase(ctx context.Context, actor string, r Request, cmdID string) (Result, error) {
	if err := r.Validate(); err != nil {
		return Result{}, err
	}
	if cmdID == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return Result{}, err
		}
		cmdID = hex.EncodeToString(b[:])
	}
	var plan Plan
	cmd := events.Command{
		ID:          cmdID,
		Actor:       actor,
		Kind:        "erase",
		Fingerprint: events.Fingerprint("erase", r.Scope, r.Target, strconv.FormatBool(r.WithComments), r.Reason),
		Decide: func(ctx context.Context, tx *events.Tx) ([]events.Change, error) {
			p, err := Preview(ctx, tx.Q(), r)
			if err != nil {
				return nil, err
			}
			if p.ByRole, err = Who(ctx, tx.Q(), actor, p); err != nil {
				return nil, err
			}
			plan = p
			return []events.Change{{AggregateType: Aggregate, AggregateID: cmdID, Expect: 0,
				Events: []events.Pending{s.Types.Erased.New(p.Erased)}}}, nil
		},
		After: func(ctx context.Context, q events.Querier, appended []events.Event) error {
			at := appended[0].Position
			text := false
			for _, x := range plan.Positions {
				if err := events.ErasePayload(ctx, q, x.Position, x.Kept, at); err != nil {
					return fmt.Errorf("erase position %d: %w", x.Position, err)
				}
				if x.Type == "attachment_added" {
					if err := dropFile(ctx, q, x.Kept); err != nil {
						return err
					}
				}
				text = text || x.Type == "ticket_opened" || x.Type == "ticket_edited"
			}
			// FTS5 keeps deleted terms in older segments until they merge:
			// merge them all now, so the words leave the indexes (the
			// search box's holds comments too). On a large site this
			// rewrites the index once per erasure: erasures are rare.
			fts := []string{"search_fts"}
			if text {
				fts = append(fts, "tickets_fts")
			}
			for _, t := range fts {
				if _, err := q.ExecContext(ctx, `INSERT INTO `+t+` (`+t+`) VALUES ('optimize')`); err != nil {
					return fmt.Errorf("compact the search index %s: %w", t, err)
				}
			}
			return nil
		},
	}
	res, err := s.Writer.Do(ctx, cmd)
	if err != nil {
		return Result{}, err
	}
	out := Result{Plan: plan, Repeated: res.Repeated}
	if len(res.Events) > 0 {
		out.Position = res.Events[0].Position
		if res.Repeated {
			_ = json.Unmarshal(res.Events[0].Data, &out.Erased)
		}
	}
	// A reader holding an older snapshot can keep the checkpoint from
	// finishing: try a few times; the erasure stands either way, and the
	// bytes leave the WAL at the next checkpoint.
	for i := range 5 {
		if out.CheckpointErr = events.SecureDelete(ctx, s.DB); out.CheckpointErr == nil {
			break
		}
		time.Sleep(time.Duration(i+1) * 20 * time.Millisecond)
	}
	return out, nil
}

// dropFile deletes the file an erased attachment named (kept holds its
// hash), unless an attachment not erased still names the same bytes.
func dropFile(ctx context.Context, q events.Querier, kept []byte) error {
	var d struct {
		SHA256 string `json:"sha256"`
	}
	if err := json.Unmarshal(kept, &d); err != nil || d.SHA256 == "" {
		return nil
	}
	_, err := q.ExecContext(ctx, `DELETE FROM blobs WHERE sha256 = ? AND NOT EXISTS (
		SELECT 1 FROM events e LEFT JOIN payloads p ON p.position = e.position
		WHERE e.event_type = 'attachment_added' AND p.erased_by IS NULL
		AND json_extract(COALESCE(p.data, e.data), '$.sha256') = ?)`, d.SHA256, d.SHA256)
	if err != nil {
		return fmt.Errorf("delete the erased file: %w", err)
	}
	return nil
}
