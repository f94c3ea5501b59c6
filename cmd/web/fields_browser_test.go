package main

import (
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A ticket with fields and relations fits 1280 and 390 px without
// sideways scrolling (screenshots in $BRAID_SCREENSHOTS when set).
func TestTicketFieldsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser suite")
	}
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada") // the site admin
	for _, f := range []url.Values{
		{"name": {"priority"}, "kind": {"one_of"}, "choices": {"low\nnormal\nhigh\nurgent"}},
		{"name": {"severity"}, "kind": {"one_of"}, "choices": {"minor\nmajor\ncritical"}},
		{"name": {"component"}, "kind": {"text"}},
		{"name": {"due"}, "kind": {"date"}},
	} {
		if r := ada.command("/p/main/fields", "/p/main/fields", f); r.status != 303 {
			t.Fatalf("define: %d", r.status)
		}
	}
	t1, t2, t3 := ada.open("Export button does nothing"), ada.open("Fix login on Safari"), ada.open("Release 2.0")
	for _, c := range [][3]string{{"priority", "urgent"}, {"severity", "critical"}, {"component", "export / CSV writer"}, {"due", "2026-12-01"}} {
		if r := ada.command(t1, t1+"/fields", url.Values{"field": {c[0]}, "value": {c[1]}}); r.status != 303 {
			t.Fatalf("set %s: %d", c[0], r.status)
		}
	}
	for _, c := range []struct{ kind, other string }{{"blocked_by", t2}, {"blocks", t3}, {"relates_to", t2}} {
		if r := ada.command(t1, t1+"/relations", url.Values{"kind": {c.kind}, "other": {strings.TrimPrefix(c.other, "/tickets/")}}); r.status != 303 {
			t.Fatalf("relate: %d", r.status)
		}
	}
	p := &person{tb: t, ctx: newChromium(t), base: s.URL}
	p.register("bob")
	if d := strings.TrimSpace(os.Getenv("BRAID_SCREENSHOTS")); d != "" {
		p.shot = screenshotDir(t)
	}
	for _, w := range []int64{1280, 390} {
		if w < 500 {
			p.do(chromedp.EmulateViewport(w, 844, chromedp.EmulateMobile))
		} else {
			p.do(chromedp.EmulateViewport(w, 900))
		}
		p.visit(t1)
		p.waitFor("the side box", `!!document.querySelector(".ticket-side .relations")`)
		if got := p.text(".ticket-side .relations"); !strings.Contains(got, "Blocked by") || !strings.Contains(got, "Fix login on Safari") {
			t.Errorf("relations at %d px: %q", w, got)
		}
		if eval[bool](p, `document.documentElement.scrollWidth > document.documentElement.clientWidth`) {
			t.Errorf("the ticket page is wider than %d px", w)
		}
		if p.shot != "" {
			p.screenshot("ticket-fields-" + strconv.FormatInt(w, 10))
		}
	}
}
