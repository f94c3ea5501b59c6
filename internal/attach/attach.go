// Package attach holds the files attached to tickets and comments: their
// bytes in the blobs table under their SHA-256 (outside the events table;
// the attachment_added event carries the hash, so the braid covers the
// file), the checks on name, type and size, reading an upload within its
// limit, the verify check of every referenced blob, and writing and
// reading blobs beside an export. See docs/attachments.md.
package attach

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/input"
)

// DefaultMax is the default limit on the files of one upload: 10 MB.
const DefaultMax = 10 << 20

// MaxName is the longest file name kept, in characters.
const MaxName = 120

// MaxFiles is the most files one request may carry.
const MaxFiles = 10

// Images are the types shown inline (<img>); everything else is a download.
var Images = []string{"image/png", "image/jpeg", "image/gif", "image/webp"}

// DefaultTypes is the allow-list of sniffed types (http.DetectContentType,
// without parameters): the images, PDF, plain text (which covers logs, CSV
// and JSON as the sniffer sees them), zip and gzip. HTML, SVG, XML and
// scripts are never served from here.
var DefaultTypes = append(slices.Clone(Images), "application/pdf", "text/plain", "application/zip", "application/x-gzip", "application/json")

// File is one uploaded file, checked and hashed.
type File struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	Data        []byte `json:"-"`
}

// IsImage says whether a stored type is shown inline.
func IsImage(contentType string) bool { return slices.Contains(Images, contentType) }

// ValidSHA says whether s is a hash as the events carry it: 64 lowercase hex digits.
var ValidSHA = regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString

// CheckName checks a file's name: display text only, never a path. One
// line of text (the input package), at most MaxName characters, no slash,
// backslash or NUL, not "." or "..".
func CheckName(field, name string) error {
	if strings.TrimSpace(name) == "" {
		return errs.Field(field, "A file needs a name.")
	}
	if err := input.Line(field, "A file's name", name, MaxName); err != nil {
		return err
	}
	if strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return errs.Field(field, "A file's name cannot contain / or \\; %q does.", name)
	}
	return nil
}

// Sniff returns the allow-listed type of data, or an invalid error naming
// the file and the type it looked like.
func Sniff(field, name string, data []byte, allowed []string) (string, error) {
	t, _, _ := mime.ParseMediaType(http.DetectContentType(data))
	if t == "text/plain" && looksLike(data) {
		t = "text/html" // the sniffer says text/plain for SVG without a prolog; refuse it too
	}
	if !slices.Contains(allowed, t) {
		return "", errs.Field(field, "%s looks like %s, which cannot be attached. Allowed: %s.", name, t, strings.Join(allowed, ", "))
	}
	return t, nil
}

// looksLike catches markup the sniffer calls text: an <svg or <!doctype
// or <html anywhere near the start.
func looksLike(data []byte) bool {
	head := bytes.ToLower(data[:min(len(data), 1024)])
	for _, m := range []string{"<svg", "<html", "<!doctype", "<script", "<?xml"} {
		if bytes.Contains(head, []byte(m)) {
			return true
		}
	}
	return false
}

// New checks one file's name and type and hashes it.
func New(field, name string, data []byte, allowed []string) (File, error) {
	if err := CheckName(field, name); err != nil {
		return File{}, err
	}
	if len(data) == 0 {
		return File{}, errs.Field(field, "%s is empty.", name)
	}
	t, err := Sniff(field, name, data, allowed)
	if err != nil {
		return File{}, err
	}
	sum := sha256.Sum256(data)
	return File{Name: name, ContentType: t, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Data: data}, nil
}

// Size writes a byte count for people: 1.5 MB, 820 KB, 12 bytes.
func Size(n int64) string {
	switch {
	case n >= 1<<20:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/(1<<20)), ".0") + " MB"
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", (n+512)>>10)
	case n == 1:
		return "1 byte"
	}
	return fmt.Sprintf("%d bytes", n)
}

// Files reads the files of the multipart form field (already parsed, in
// memory) and checks each. A request without a multipart form has none.
func Files(r *http.Request, field string, allowed []string) ([]File, error) {
	if r.MultipartForm == nil {
		return nil, nil
	}
	var hs []*multipart.FileHeader
	for _, h := range r.MultipartForm.File[field] {
		if h.Filename == "" && h.Size == 0 {
			continue // a file input left empty
		}
		hs = append(hs, h)
	}
	if len(hs) > MaxFiles {
		return nil, errs.Field(field, "At most %d files at once; there are %d.", MaxFiles, len(hs))
	}
	var out []File
	for _, h := range hs {
		f, err := h.Open()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, err
		}
		name := h.Filename
		if !utf8.ValidString(name) {
			return nil, errs.Field(field, "A file's name is not valid UTF-8 text; rename the file.")
		}
		file, err := New(field, name, data, allowed)
		if err != nil {
			return nil, err
		}
		out = append(out, file)
	}
	return out, nil
}

// Store keeps a file's bytes under its hash (once: the same bytes again are
// the same row). q is the writer's transaction, so the blob and the event
// that names it are written together or not at all.
func Store(ctx context.Context, q events.Querier, f File, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO blobs (sha256, size, content_type, data, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (sha256) DO NOTHING`, f.SHA256, f.Size, f.ContentType, f.Data, now.UTC().Format(events.TimeFormat))
	return err
}

// Blob is a stored file.
type Blob struct {
	SHA256      string
	Size        int64
	ContentType string
	Data        []byte
}

// Get reads a blob; not_found if there is none.
func Get(ctx context.Context, q events.Querier, sha string) (Blob, error) {
	b := Blob{SHA256: sha}
	err := q.QueryRowContext(ctx, `SELECT size, content_type, data FROM blobs WHERE sha256 = ?`, sha).Scan(&b.Size, &b.ContentType, &b.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return Blob{}, errs.E(errs.NotFound, "There is no such file.")
	}
	return b, err
}
