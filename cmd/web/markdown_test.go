package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestMarkdownPreviewAndRender: the Preview button re-shows the form with
// the text rendered and appends nothing; a posted comment shows as
// Markdown with its references linked.
func TestMarkdownPreviewAndRender(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	tpath := ada.open("Rendering")
	before := countEvents(t, s.DB)

	f := ada.form("/tickets/new", "", url.Values{"title": {"Preview me"}, "body": {"**x** and @ada"}, "preview": {"1"}})
	a := ada.post("/tickets", f)
	if a.status != http.StatusOK || !strings.Contains(a.body, "<strong>x</strong>") || !strings.Contains(a.body, `href="/people/ada"`) ||
		!strings.Contains(a.body, "**x** and @ada</textarea>") {
		t.Fatalf("new-ticket preview: %d\n%s", a.status, a.body)
	}
	f = ada.form(tpath, tpath+"/comments", url.Values{"body": {"see #1 <script>alert(1)</script>"}, "preview": {"1"}})
	a = ada.post(tpath+"/comments", f)
	if a.status != http.StatusOK || !strings.Contains(a.body, `class="preview"`) || !strings.Contains(a.body, `href="/tickets/1"`) || strings.Contains(a.body, "<script>alert") {
		t.Fatalf("comment preview: %d\n%s", a.status, a.body)
	}
	if n := countEvents(t, s.DB); n != before {
		t.Fatalf("previews appended %d events", n-before)
	}

	f.Del("preview")
	f.Set("body", "**bold** @nobody-here")
	if a := ada.post(tpath+"/comments", f); a.status != http.StatusSeeOther {
		t.Fatalf("comment: %d\n%s", a.status, a.body)
	}
	a = ada.get(tpath)
	if !strings.Contains(a.body, "<strong>bold</strong> @nobody-here") {
		t.Fatalf("comment not rendered:\n%s", a.body)
	}
}
