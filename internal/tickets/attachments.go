package tickets

import (
	"context"
	"net/url"
	"strconv"

	"braid/internal/access"
	"braid/internal/attach"
	"braid/internal/errs"
	"braid/internal/events"
	"braid/templates"
)

// AttachmentAdded attaches a file to a ticket, or to one of its comments
// when Comment is set. The file's bytes are in the blobs table under
// SHA256 (internal/attach); the event carries the hash, so the braid
// covers the file. Name is display text only.
type AttachmentAdded struct {
	SHA256      string `json:"sha256"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Comment     int64  `json:"comment,omitempty"`
}

// Attachment is one attached file as the ticket shows it.
type Attachment struct {
	SHA256      string `json:"sha256"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Comment     int64  `json:"comment,omitempty"`
	Author      string `json:"author"`
	CreatedAt   string `json:"created_at"`
	Position    int64  `json:"position"`
}

// URL is where the file is served: /files/{sha256}/{name}.
func (a Attachment) URL() string { return "/files/" + a.SHA256 + "/" + url.PathEscape(a.Name) }

func attachmentOf(e *events.Event, d AttachmentAdded) Attachment {
	return Attachment{SHA256: d.SHA256, Name: d.Name, ContentType: d.ContentType, Size: d.Size, Comment: d.Comment,
		Author: e.Actor, CreatedAt: e.OccurredAt, Position: e.Position}
}

// registerAttachments defines attachment_added and its projection, the
// attachments table (blobs are not a projection: replay leaves them).
// The tickets projection (tix) keeps each ticket's version and update time.
func registerAttachments(reg *events.Registry, t *Types, tix *events.Projection) {
	t.AttachmentAdded = events.Define[AttachmentAdded](reg, attach.EventType, 1)
	events.On(reg, tix, t.AttachmentAdded, func(ctx context.Context, q events.Querier, e *events.Event, d AttachmentAdded) error {
		_, err := q.ExecContext(ctx, `UPDATE tickets SET version = ?, updated_at = ? WHERE id = ?`, e.Version, e.OccurredAt, e.AggregateID)
		return err
	})
	p := reg.NewProjection("attachments", "attachments")
	events.On(reg, p, t.AttachmentAdded, func(ctx context.Context, q events.Querier, e *events.Event, d AttachmentAdded) error {
		_, err := q.ExecContext(ctx, `INSERT INTO attachments (ticket_id, position, sha256, name, content_type, size, comment_id, author, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.AggregateID, e.Position, d.SHA256, d.Name, d.ContentType, d.Size, d.Comment, e.Actor, e.OccurredAt)
		return err
	})
	// An erasure (internal/erase) takes the erased attachments off the
	// ticket; their files are deleted with them.
	events.On(reg, p, events.ErasedEvent, func(ctx context.Context, q events.Querier, e *events.Event, d events.Erasure) error {
		for _, x := range d.Positions {
			if x.Type != attach.EventType {
				continue
			}
			if _, err := q.ExecContext(ctx, `DELETE FROM attachments WHERE position = ?`, x.Position); err != nil {
				return err
			}
		}
		return nil
	})
}

// attachEvents are the events attaching files (already checked and hashed
// by internal/attach) to comment cid (0: the ticket), with their blobs
// stored in the writer's transaction: the bytes and the event that names
// them are written together or not at all.
func (t Types) attachEvents(ctx context.Context, tx *events.Tx, files []attach.File, cid int64) ([]events.Pending, error) {
	var out []events.Pending
	for _, f := range files {
		if err := attach.Store(ctx, tx.Q(), f, tx.Now()); err != nil {
			return nil, err
		}
		out = append(out, t.AttachmentAdded.New(AttachmentAdded{SHA256: f.SHA256, Name: f.Name, ContentType: f.ContentType, Size: f.Size, Comment: cid}))
	}
	return out, nil
}

func fileParts(files []attach.File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.SHA256, f.Name)
	}
	return out
}

// Attach attaches files to ticket id (or to its comment cid, if not 0):
// whoever may comment on the ticket may attach. It returns the
// attachments as the events made them.
func (s *Service) Attach(ctx context.Context, actor string, id, cid int64, files []attach.File, cmdID string) ([]Attachment, error) {
	if len(files) == 0 {
		return nil, errs.Field("file", "Choose a file to attach.")
	}
	fp := fingerprint("attach", id, append([]string{strconv.FormatInt(cid, 10)}, fileParts(files)...)...)
	res, err := s.on(ctx, actor, cmdID, fp, id, always(access.Comment), func(t Ticket, tx *events.Tx) ([]events.Pending, error) {
		if cid != 0 {
			if _, ok := t.Comment(cid); !ok {
				return nil, errs.E(errs.NotFound, "Ticket #%d has no comment %d.", t.ID, cid)
			}
		}
		return s.Types.attachEvents(ctx, tx, files, cid)
	})
	if err != nil {
		return nil, err
	}
	var out []Attachment
	for i := range res.Events {
		if d, err := s.Types.AttachmentAdded.Decode(s.Registry, &res.Events[i]); err == nil {
			out = append(out, attachmentOf(&res.Events[i], d))
		}
	}
	return out, nil
}

// CommentWithFiles adds a comment with files attached to it, in one
// command: the comment_added event, then one attachment_added each.
func (s *Service) CommentWithFiles(ctx context.Context, actor string, id int64, body string, files []attach.File, cmdID string) (int64, error) {
	if len(files) == 0 {
		return s.Comment(ctx, actor, id, body, cmdID)
	}
	fp := fingerprint("comment_files", id, append([]string{body}, fileParts(files)...)...)
	res, err := s.on(ctx, actor, cmdID, fp, id, always(access.Comment), func(t Ticket, tx *events.Tx) ([]events.Pending, error) {
		evs, err := s.Types.AddComment(t, body)
		if err != nil {
			return nil, err
		}
		more, err := s.Types.attachEvents(ctx, tx, files, t.LastComment+1)
		return append(evs, more...), err
	})
	if err != nil || len(res.Events) == 0 {
		return 0, err
	}
	d, err := s.Types.CommentAdded.Decode(s.Registry, &res.Events[0])
	return d.CommentID, err
}

// Attachments lists ticket id's attachments from the projection, in log order.
func Attachments(ctx context.Context, q events.Querier, id int64) ([]Attachment, error) {
	rows, err := q.QueryContext(ctx, `SELECT sha256, name, content_type, size, comment_id, author, created_at, position
		FROM attachments WHERE ticket_id = ? ORDER BY position`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Attachment
	for rows.Next() {
		var a Attachment
		if err := rows.Scan(&a.SHA256, &a.Name, &a.ContentType, &a.Size, &a.Comment, &a.Author, &a.CreatedAt, &a.Position); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// attachViews puts each attachment under its comment, or on the ticket.
func attachViews(v *templates.TicketView, as []Attachment) {
	for _, a := range as {
		av := templates.AttachmentView{URL: a.URL(), Name: a.Name, Size: attach.Size(a.Size), Image: attach.IsImage(a.ContentType)}
		placed := false
		for i := range v.Comments {
			if a.Comment != 0 && v.Comments[i].ID == a.Comment {
				v.Comments[i].Files, placed = append(v.Comments[i].Files, av), true
			}
		}
		if !placed && a.Comment == 0 {
			v.Files = append(v.Files, av)
		}
	}
}

// OpenWithFiles opens a ticket with files attached, in one command.
func (s *Service) OpenWithFiles(ctx context.Context, actor string, d Draft, files []attach.File, cmdID string) (int64, error) {
	return s.open(ctx, actor, d, files, cmdID)
}

// EditWithFiles edits a ticket and attaches files to it, in one command:
// files with an unchanged text are only the attachments.
func (s *Service) EditWithFiles(ctx context.Context, actor string, id int64, d Draft, version int64, files []attach.File, cmdID string) error {
	return s.edit(ctx, actor, id, d, version, files, cmdID)
}
