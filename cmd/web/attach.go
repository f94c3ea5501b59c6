package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"braid/internal/access"
	"braid/internal/attach"
	"braid/internal/errs"
	"braid/internal/tickets"
	"braid/internal/web"
)

// Attachments (docs/attachments.md): the serve flags, the body reader that
// lets the four forms that may carry files send multipart/form-data within
// the attachment limit, the upload route and the file route.

type attachFlags struct {
	max   *string
	types *string
}

func addAttachFlags(fs *flag.FlagSet, getenv func(string) string) *attachFlags {
	def := getenv("BRAID_MAX_ATTACHMENT")
	if def == "" {
		def = "10MB"
	}
	tdef := getenv("BRAID_ATTACHMENT_TYPES")
	if tdef == "" {
		tdef = strings.Join(attach.DefaultTypes, ",")
	}
	return &attachFlags{
		max:   fs.String("max-attachment", def, "the most the files of one upload may add up to, e.g. 10MB, 512KB or a number of bytes (env BRAID_MAX_ATTACHMENT; default 10MB)"),
		types: fs.String("attachment-types", tdef, "the file types that may be attached, as the server sniffs them, comma separated (env BRAID_ATTACHMENT_TYPES; default: PNG, JPEG, GIF, WebP, PDF, plain text, zip, gzip, JSON). HTML, SVG and XML are never allowed"),
	}
}

// uploads is the checked configuration: the limit and the allow-list.
type uploads struct {
	max   int64
	types []string
}

// uploadsOf is the Env's upload configuration; nil when uploads are off.
func uploadsOf(w *web.Env) *uploads {
	if w.MaxAttachment <= 0 {
		return nil
	}
	return &uploads{max: w.MaxAttachment, types: w.AttachmentTypes}
}

var sizeFlag = regexp.MustCompile(`^(?i)\s*(\d+)\s*(b|kb|k|mb|m|gb|g)?\s*$`)

func (f *attachFlags) check() (*uploads, error) {
	m := sizeFlag.FindStringSubmatch(*f.max)
	if m == nil {
		return nil, fail(exitFailed, "--max-attachment %q: want a size such as 10MB, 512KB or 1048576", *f.max)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	mult := map[string]int64{"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30}[strings.ToLower(m[2])]
	if err != nil || n < 1 || n > (1<<30)/mult {
		return nil, fail(exitFailed, "--max-attachment %q: want a size from 1 byte to 1GB", *f.max)
	}
	u := &uploads{max: n * mult}
	for _, t := range strings.Split(*f.types, ",") {
		t = strings.ToLower(strings.TrimSpace(t))
		switch {
		case t == "":
		case strings.Contains(t, "html") || strings.Contains(t, "svg") || strings.Contains(t, "xml") || strings.Contains(t, "javascript"):
			return nil, fail(exitFailed, "--attachment-types: %s can run script in a browser and cannot be allowed", t)
		default:
			u.types = append(u.types, t)
		}
	}
	if len(u.types) == 0 {
		return nil, fail(exitFailed, "--attachment-types: name at least one type, e.g. image/png")
	}
	return u, nil
}

// uploadPath matches the routes whose forms may carry files: the new
// ticket, the edit form (POST with _method=PATCH), a comment and the
// upload route itself.
var uploadPath = regexp.MustCompile(`^/tickets(/[0-9]+(/comments|/attachments)?)?$`)

const uploadedKey = "braid.uploaded"

// formRoom is what the text fields of a multipart form may add to the files.
const formRoom = 1 << 20

// uploadBody reads a multipart/form-data body on an upload route, at most
// the attachment limit plus room for the text fields, into memory and
// parses it there (nothing spools to disk). Over the limit is a 413 before
// anything past it is read, so nothing is appended and nothing stored.
// Every other body goes on to limitBody as before.
func uploadBody(u *uploads) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
			if u == nil || mt != "multipart/form-data" || r.Method != http.MethodPost || !uploadPath.MatchString(r.URL.Path) {
				return next(c)
			}
			limit := u.max + formRoom
			if r.ContentLength > limit {
				return filesTooLarge(u.max)
			}
			b, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, limit))
			var big *http.MaxBytesError
			switch {
			case errors.As(err, &big):
				return filesTooLarge(u.max)
			case err != nil:
				return echo.NewHTTPError(http.StatusBadRequest, "The request body could not be read.")
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
			if err := r.ParseMultipartForm(limit + formRoom); err != nil {
				return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read: it is not valid multipart/form-data.")
			}
			var total int64
			for _, hs := range r.MultipartForm.File {
				for _, h := range hs {
					total += h.Size
				}
			}
			if total > u.max {
				return filesTooLarge(u.max)
			}
			c.Set(uploadedKey, true)
			return next(c)
		}
	}
}

func filesTooLarge(max int64) error {
	return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("The files are too large: together they may be at most %s.", attach.Size(max)))
}

// read returns the checked files of the request's "files" (or "file") field.
func (u *uploads) read(c echo.Context) ([]attach.File, error) {
	fs, err := attach.Files(c.Request(), "files", u.types)
	if err != nil || len(fs) > 0 {
		return fs, err
	}
	return attach.Files(c.Request(), "file", u.types)
}

// attachmentsJSON is the answer of POST /tickets/{id}/attachments.
type attachmentsJSON struct {
	Attachments []attachmentJSON `json:"attachments"`
}

type attachmentJSON struct {
	tickets.Attachment
	URL string `json:"url"`
}

// postAttachments attaches the files of a multipart form to a ticket, or
// to one of its comments (field comment): whoever may comment may attach.
func postAttachments(tix *tickets.Handlers, u *uploads) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id < 1 {
			return errs.E(errs.NotFound, "There is no such page: %q is not a number.", c.Param("id"))
		}
		if u == nil {
			return errs.E(errs.NotFound, "This server takes no attachments.")
		}
		me, _ := web.CurrentUser(c.Request().Context())
		// Someone who may not read the ticket learns nothing of it: 404.
		if err := access.CanTicket(c.Request().Context(), tix.Env.DB.Read, me.ID, access.Read, id); err != nil {
			return err
		}
		if c.Get(uploadedKey) == nil {
			return errs.Field("files", "Send the files as multipart/form-data, in the field files.")
		}
		var cid int64
		if s := c.FormValue("comment"); s != "" {
			if cid, err = strconv.ParseInt(s, 10, 64); err != nil || cid < 1 {
				return errs.Field("comment", "comment is a comment's number; got %q", s)
			}
		}
		files, err := u.read(c)
		if err != nil {
			return err
		}
		as, err := tix.Service.Attach(c.Request().Context(), me.ID, id, cid, files, c.FormValue("command_id"))
		if err != nil {
			return err
		}
		if !web.WantsJSON(c) {
			return web.Redirect(c, "/tickets/"+strconv.FormatInt(id, 10))
		}
		out := attachmentsJSON{Attachments: []attachmentJSON{}}
		for _, a := range as {
			out.Attachments = append(out.Attachments, attachmentJSON{a, a.URL()})
		}
		c.Response().Header().Set(echo.HeaderLocation, "/tickets/"+strconv.FormatInt(id, 10))
		return c.JSON(http.StatusCreated, out)
	}
}

// fileCSP is the policy of every served file: a sandbox (no script, no
// same origin, no forms), nothing loaded but the file itself.
const fileCSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"

// serveFile answers GET /files/{sha256}[/{name}] to someone who may read a
// ticket the file is attached to; to anyone else it does not exist (404).
// The type is the allow-listed one stored at upload, never one derived
// from the name; only images are inline.
func serveFile(w *web.Env) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		sha := c.Param("sha")
		notFound := errs.E(errs.NotFound, "There is no such file, or you may not see it.")
		if !attach.ValidSHA(sha) {
			return notFound
		}
		me, _ := web.CurrentUser(ctx)
		rows, err := w.DB.Read.QueryContext(ctx, `SELECT ticket_id, name, content_type FROM attachments WHERE sha256 = ? ORDER BY position`, sha)
		if err != nil {
			return err
		}
		type ref struct {
			ticket   int64
			name, ct string
		}
		var refs []ref
		for rows.Next() {
			var r ref
			if err := rows.Scan(&r.ticket, &r.name, &r.ct); err != nil {
				rows.Close()
				return err
			}
			refs = append(refs, r)
		}
		rows.Close()
		var found *ref
		for i := range refs {
			err := access.CanTicket(ctx, w.DB.Read, me.ID, access.Read, refs[i].ticket)
			if err == nil {
				found = &refs[i]
				break
			}
			if code := errs.Code(err); code != errs.NotFound && code != errs.Forbidden {
				return err
			}
		}
		if found == nil {
			return notFound
		}
		b, err := attach.Get(ctx, w.DB.Read, sha)
		if errs.Code(err) == errs.NotFound {
			return errs.E(errs.NotFound, "The file %s is missing from this server; `web verify` names it.", found.name)
		}
		if err != nil {
			return err
		}
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, b.ContentType)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", fileCSP)
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		disposition := "attachment"
		if attach.IsImage(b.ContentType) {
			disposition = "inline"
		}
		if cd := mime.FormatMediaType(disposition, map[string]string{"filename": found.name}); cd != "" {
			disposition = cd
		}
		h.Set("Content-Disposition", disposition)
		// The bytes behind a hash never change; only those who may read
		// the ticket get them, so no shared cache keeps them.
		h.Set("Cache-Control", "private, max-age=31536000, immutable")
		h.Set("ETag", `"`+sha+`"`)
		http.ServeContent(c.Response(), c.Request(), "", time.Time{}, bytes.NewReader(b.Data))
		return nil
	}
}
