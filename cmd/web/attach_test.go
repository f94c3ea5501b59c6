package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// upfile is one file of a multipart upload.
type upfile struct {
	field, name string
	data        []byte
}

// upload posts fields and files as multipart/form-data, as a browser's
// form with enctype="multipart/form-data" does.
func (b *browser) upload(path string, fields url.Values, files []upfile, hdr ...string) answer {
	b.tb.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, vs := range fields {
		for _, v := range vs {
			mw.WriteField(k, v)
		}
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+f.field+`"; filename="`+strings.NewReplacer(`"`, `\"`, `\`, `\\`).Replace(f.name)+`"`)
		h.Set("Content-Type", "application/octet-stream")
		w, err := mw.CreatePart(h)
		if err != nil {
			b.tb.Fatal(err)
		}
		w.Write(f.data)
	}
	mw.Close()
	req, err := http.NewRequest("POST", b.base+path, &body)
	if err != nil {
		b.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.tb.Fatal(err)
	}
	defer res.Body.Close()
	bs, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, location: res.Header.Get("Location"), body: string(bs), header: res.Header}
}

// attachTo comments on ticket with files through the ticket page's form.
func (b *browser) attachTo(ticket, body string, files ...upfile) answer {
	b.tb.Helper()
	return b.upload(ticket+"/comments", b.form(ticket, ticket+"/comments", url.Values{"body": {body}}), files)
}

func pngBytes(tb testing.TB, w, h int) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		for y := range h {
			img.Set(x, y, color.RGBA{uint8(x * 7), 90, uint8(y * 5), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func shaOf(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func countRows(tb testing.TB, path, table string) int {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

const pdfBytes = "%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"

// A comment with an image and a PDF through the page's own form: one
// command, comment_added then two attachment_added; the image is shown
// inline under the comment, the PDF as a download link; each is served
// with the stored type, nosniff, a sandbox CSP and the right disposition.
func TestAttachmentsOnCommentForm(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	ticket := ada.open("Screenshot of the crash")
	shot := pngBytes(t, 40, 30)
	before := countEvents(t, s.DB)
	a := ada.attachTo(ticket, "see the screenshot", upfile{"files", "crash shot.png", shot}, upfile{"files", "report.pdf", []byte(pdfBytes)})
	if a.status != http.StatusSeeOther {
		t.Fatalf("comment with files: got %d, want 303\n%.800s", a.status, a.body)
	}
	evs := eventsAfter(t, s.DB, before)
	if got := typesOf(evs); got != "comment_added attachment_added attachment_added" {
		t.Fatalf("appended %q", got)
	}
	if evs[1].Data["sha256"] != shaOf(shot) || evs[1].Data["content_type"] != "image/png" || evs[1].Data["comment"] != float64(1) {
		t.Fatalf("attachment event %v", evs[1].Data)
	}
	page := ada.get(ticket).body
	imgURL := "/files/" + shaOf(shot) + "/crash%20shot.png"
	if !strings.Contains(page, `<img src="`+imgURL+`"`) {
		t.Fatalf("the ticket page shows no inline image %s\n%s", imgURL, page)
	}
	pdfURL := "/files/" + shaOf([]byte(pdfBytes)) + "/report.pdf"
	if !strings.Contains(page, `href="`+pdfURL+`" download="report.pdf"`) || strings.Contains(page, `<img src="`+pdfURL) {
		t.Fatalf("the PDF is not a download link")
	}
	// The urlencoded comment form still works as before.
	ada.comment(ticket, "no files this time")

	img := ada.get(imgURL)
	if img.status != 200 || img.body != string(shot) {
		t.Fatalf("GET image: %d, %d bytes", img.status, len(img.body))
	}
	for h, want := range map[string]string{
		"Content-Type":            "image/png",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'",
		"Content-Disposition":     `inline; filename="crash shot.png"`,
		"Cache-Control":           "private, max-age=31536000, immutable",
	} {
		if got := img.header.Get(h); got != want {
			t.Errorf("image %s: %q, want %q", h, got, want)
		}
	}
	pdf := ada.get(pdfURL)
	if pdf.status != 200 || pdf.header.Get("Content-Type") != "application/pdf" || pdf.header.Get("Content-Disposition") != `attachment; filename=report.pdf` {
		t.Fatalf("GET pdf: %d %v", pdf.status, pdf.header)
	}
	// The name in the path is only for people: the hash decides.
	if r := ada.get("/files/" + shaOf(shot) + "/x.html"); r.status != 200 || r.header.Get("Content-Type") != "image/png" {
		t.Fatalf("another name: %d %q", r.status, r.header.Get("Content-Type"))
	}
	for _, p := range []string{"/files/" + strings.Repeat("0", 64), "/files/nothex", "/files/" + strings.ToUpper(shaOf(shot))} {
		if r := ada.get(p); r.status != 404 {
			t.Errorf("GET %s: %d, want 404", p, r.status)
		}
	}
}

// Over the limit is a 413 with a plain message, nothing appended and
// nothing stored; a type outside the allow-list (HTML, SVG) and a bad name
// are 422 with the message beside the field, nothing appended or stored.
func TestAttachmentLimitsAndTypes(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	ticket := ada.open("Limits")
	before := countEvents(t, s.DB)
	big := make([]byte, 11<<20)
	copy(big, pngBytes(t, 2, 2))
	a := ada.attachTo(ticket, "too big", upfile{"files", "big.png", big})
	if a.status != http.StatusRequestEntityTooLarge || !strings.Contains(a.body, "The files are too large: together they may be at most 10 MB.") {
		t.Fatalf("11 MB: got %d\n%.600s", a.status, a.body)
	}
	j := ada.upload(ticket+"/attachments", nil, []upfile{{"files", "big.png", big}}, "Accept", "application/json", "X-CSRF-Token", ada.form(ticket, ticket+"/comments", nil).Get("_csrf"))
	if j.status != http.StatusRequestEntityTooLarge || !strings.Contains(j.body, `"code"`) {
		t.Fatalf("11 MB as JSON: got %d\n%.600s", j.status, j.body)
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{`page.html`, []byte("<!DOCTYPE html><html><script>alert(1)</script></html>"), "looks like text/html"},
		{`logo.svg`, []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>`), "cannot be attached"},
		{`logo.png`, []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>`), "cannot be attached"},
		{strings.Repeat("n", 121) + ".png", pngBytes(t, 2, 2), "Keep a file&#39;s name to 120 characters"},
		{"empty.txt", nil, "empty.txt is empty."},
	} {
		a := ada.attachTo(ticket, "with "+c.name, upfile{"files", c.name, c.data})
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, c.want) || !strings.Contains(a.body, `id="files-error"`) {
			t.Errorf("%.30s: got %d, want 422 with %q beside the field\n%.3000s", c.name, a.status, c.want, a.body)
		}
	}
	if n := countEvents(t, s.DB); n != before {
		t.Fatalf("refused uploads appended %d events", n-before)
	}
	if n := countRows(t, s.DB, "blobs"); n != 0 {
		t.Fatalf("refused uploads stored %d blobs", n)
	}
	// Multipart anywhere else is still refused, unread.
	if r := ada.upload("/account/name", url.Values{"display_name": {"x"}}, nil); r.status != http.StatusUnsupportedMediaType {
		t.Fatalf("multipart on /account/name: %d", r.status)
	}
}

// POST /tickets/{id}/attachments with a token: 201 and the attachments as
// JSON; the same with the session; a reader without a role in a hidden
// project gets 404 for the file and for the upload.
func TestAttachmentAPIAndAccess(t *testing.T) {
	a := newAccessSite(t)
	mia, nina := a.people["member"], a.people["none"]
	ticket := a.openIn(t, mia, "Private crash")
	shot := pngBytes(t, 8, 8)
	csrf := mia.form(ticket, ticket+"/comments", nil).Get("_csrf")
	r := mia.upload(ticket+"/attachments", nil, []upfile{{"files", "trace.txt", []byte("panic: at line 3\n")}, {"files", "s.png", shot}},
		"Accept", "application/json", "X-CSRF-Token", csrf)
	if r.status != http.StatusCreated {
		t.Fatalf("upload: %d\n%.600s", r.status, r.body)
	}
	var got struct {
		Attachments []struct {
			SHA256, Name, URL string
			ContentType       string `json:"content_type"`
			Size              int64
		}
	}
	if err := json.Unmarshal([]byte(r.body), &got); err != nil || len(got.Attachments) != 2 || got.Attachments[1].SHA256 != shaOf(shot) ||
		got.Attachments[0].ContentType != "text/plain" || got.Attachments[1].URL != "/files/"+shaOf(shot)+"/s.png" {
		t.Fatalf("answer %s (%v)", r.body, err)
	}
	if f := mia.get(got.Attachments[1].URL); f.status != 200 {
		t.Fatalf("member GET file: %d", f.status)
	}
	// nina has no role in acme: the file does not exist for her.
	if f := nina.get(got.Attachments[1].URL); f.status != 404 {
		t.Fatalf("outsider GET file: %d, want 404", f.status)
	}
	if f := nina.get("/files/" + shaOf(shot)); f.status != 404 {
		t.Fatalf("outsider GET file without name: %d, want 404", f.status)
	}
	before := countEvents(t, a.s.DB)
	ncsrf := nina.form("/tickets/new", "/tickets", nil).Get("_csrf")
	if r := nina.upload(ticket+"/attachments", nil, []upfile{{"files", "x.png", shot}}, "Accept", "application/json", "X-CSRF-Token", ncsrf); r.status != 404 {
		t.Fatalf("outsider upload: %d, want 404\n%.400s", r.status, r.body)
	}
	// A viewer may read but not comment, so not attach.
	vic := a.people["viewer"]
	if f := vic.get(got.Attachments[0].URL); f.status != 200 || f.header.Get("Content-Disposition") != "attachment; filename=trace.txt" {
		t.Fatalf("viewer GET text: %d %q", f.status, f.header.Get("Content-Disposition"))
	}
	vcsrf := vic.form(ticket, "", nil).Get("_csrf")
	if r := vic.upload(ticket+"/attachments", nil, []upfile{{"files", "y.png", pngBytes(t, 3, 3)}}, "Accept", "application/json", "X-CSRF-Token", vcsrf); r.status != 403 {
		t.Fatalf("viewer upload: %d, want 403\n%.400s", r.status, r.body)
	}
	if n := countEvents(t, a.s.DB); n != before {
		t.Fatalf("refused uploads appended %d events", n-before)
	}
}

// verify hashes every referenced blob: an altered or a missing file fails
// it, named by the file, the ticket and the event's position. Export
// writes the blobs beside the JSON Lines; import restores and checks them.
func TestAttachmentVerifyExportImport(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	ticket := ada.open("Files")
	shot := pngBytes(t, 16, 16)
	if a := ada.attachTo(ticket, "two files", upfile{"files", "shot.png", shot}, upfile{"files", "notes.txt", []byte("hello\n")}); a.status != 303 {
		t.Fatalf("upload: %d\n%.400s", a.status, a.body)
	}
	// The /verify page hashes the files too.
	if a := ada.get("/verify"); !strings.Contains(a.body, "Attached files: 2, each present and its SHA-256 equal") {
		t.Fatalf("/verify does not tell of the files\n%.3000s", a.body)
	}
	var vs struct {
		Intact bool `json:"intact"`
		Files  struct {
			Checked int `json:"checked"`
		} `json:"files"`
	}
	if a := ada.do("GET", "/verify", nil, "Accept", "application/json"); json.Unmarshal([]byte(a.body), &vs) != nil || !vs.Intact || vs.Files.Checked != 2 {
		t.Fatalf("/verify JSON: %.600s", a.body)
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("server exit %d", code)
	}
	code, out, errOut := runWeb(t, "verify", "--db", s.DB)
	if code != 0 || !strings.Contains(out, "attachments: 2 files, each present and its SHA-256 equal") {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}

	// Export and import, with the blobs beside the file.
	dir := t.TempDir()
	exp := filepath.Join(dir, "braid.jsonl")
	if code, _, e := runWeb(t, "export", "--db", s.DB, "-o", exp); code != 0 || !strings.Contains(e, "exported 2 attached files to "+exp+".blobs") {
		t.Fatalf("export: %d %s", code, e)
	}
	if b, err := os.ReadFile(filepath.Join(exp+".blobs", shaOf(shot))); err != nil || !bytes.Equal(b, shot) {
		t.Fatalf("exported blob: %v", err)
	}
	fresh := filepath.Join(dir, "fresh.db")
	if code, out, e := runWeb(t, "import", exp, "--db", fresh); code != 0 || !strings.Contains(out, "restored 2 attached files") {
		t.Fatalf("import: %d %s %s", code, out, e)
	}
	if code, out, e := runWeb(t, "verify", "--db", fresh); code != 0 || !strings.Contains(out, "attachments: 2 files") {
		t.Fatalf("verify of the import: %d %s %s", code, out, e)
	}
	// An altered file in the export's directory refuses the import.
	os.WriteFile(filepath.Join(exp+".blobs", shaOf(shot)), append(shot, 0), 0o644)
	if code, _, e := runWeb(t, "import", exp, "--db", filepath.Join(dir, "bad.db")); code == 0 || !strings.Contains(e, `attachment "shot.png" of ticket #1 (position`) || !strings.Contains(e, "altered") {
		t.Fatalf("import of an altered blob: %d %s", code, e)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.db")); err == nil {
		t.Fatalf("a refused import left a database behind")
	}

	// Alter the bytes in place, then remove them: verify names the file.
	db, err := sql.Open("sqlite", "file:"+s.DB+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, `UPDATE blobs SET data = CAST('not the png' AS BLOB) WHERE sha256 = '`+shaOf(shot)+`'`)
	code, out, _ = runWeb(t, "verify", "--db", s.DB)
	if code != exitBroken || !strings.Contains(out, `attachment "shot.png" of ticket #1 (position`) || !strings.Contains(out, "): altered") {
		t.Fatalf("verify of an altered blob: exit %d\n%s", code, out)
	}
	// A server started on it says so on /verify (its first run checks
	// everything).
	base, stop := startServerOn(t, s.DB)
	again := *ada
	again.base = base
	if a := again.get("/verify"); !strings.Contains(a.body, `attachment &#34;shot.png&#34; of ticket #1 (position`) || !strings.Contains(a.body, "): altered") {
		t.Fatalf("/verify of an altered blob does not name it\n%.4000s", a.body)
	}
	stop()
	mustExec(t, db, `DELETE FROM blobs WHERE sha256 = '`+shaOf([]byte("hello\n"))+`'`)
	code, out, _ = runWeb(t, "verify", "--db", s.DB)
	if code != exitBroken || !strings.Contains(out, `attachment "notes.txt" of ticket #1 (position`) || !strings.Contains(out, "): missing") {
		t.Fatalf("verify of a missing blob: exit %d\n%s", code, out)
	}
	_ = context.Background
}

// The new-ticket and edit forms carry files too: the ticket_opened (or
// ticket_edited) and its attachment_added events are one command; an edit
// that changes no text only attaches.
func TestAttachmentsOnNewAndEditForms(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	before := countEvents(t, s.DB)
	shot := pngBytes(t, 5, 5)
	a := ada.upload("/tickets", ada.form("/tickets/new", "/tickets", url.Values{"title": {"With a picture"}}), []upfile{{"files", "pic.png", shot}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("open with a file: %d\n%.600s", a.status, a.body)
	}
	ticket := a.location
	if got := typesOf(eventsAfter(t, s.DB, before)); got != "ticket_opened attachment_added" {
		t.Fatalf("appended %q", got)
	}
	if !strings.Contains(ada.get(ticket).body, `<img src="/files/`+shaOf(shot)+`/pic.png"`) {
		t.Fatalf("no image on the ticket")
	}
	before = countEvents(t, s.DB)
	a = ada.upload(ticket, ada.form(ticket+"/edit", ticket, nil), []upfile{{"files", "more.txt", []byte("more\n")}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("edit with a file: %d\n%.600s", a.status, a.body)
	}
	if got := typesOf(eventsAfter(t, s.DB, before)); got != "attachment_added" {
		t.Fatalf("an edit with only a file appended %q", got)
	}
	// A refused file re-draws the form with the message beside the field.
	a = ada.upload("/tickets", ada.form("/tickets/new", "/tickets", url.Values{"title": {"Bad file"}}), []upfile{{"files", "x.html", []byte("<html><script>alert(1)</script>")}})
	if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `id="files-error"`) || !strings.Contains(a.body, "Bad file") {
		t.Fatalf("a refused file on the new form: %d\n%.2000s", a.status, a.body)
	}
}
