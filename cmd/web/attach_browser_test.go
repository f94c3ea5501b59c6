package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// In Chromium: an image pasted into the comment box goes into the file
// input with a Markdown reference to its address (static/attach.js); the
// comment sent shows the image inline, loaded from /files/ (allowed by
// the page's CSP); the page fits 390 px. With BRAID_SCREENSHOTS set it
// keeps the ticket at 1280 and 390 px.
func TestAttachmentPasteInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser suite")
	}
	s := startServer(t)
	p := &person{tb: t, ctx: newChromium(t), base: s.URL}
	p.register("ada")
	hb := newBrowser(t, s.URL)
	hb.register("bob")
	a := hb.upload("/tickets", hb.form("/tickets/new", "/tickets", url.Values{"title": {"The chart is cut off"}, "body": {"See the screenshot below."}}),
		[]upfile{{"files", "chart.png", pngBytes(t, 900, 300)}, {"files", "trace.txt", []byte("panic: index out of range\n")}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("open: %d\n%.400s", a.status, a.body)
	}
	ticket := a.location

	p.visit(ticket)
	p.waitFor("the ticket's image", `(() => { const i = document.querySelector(".attachments img"); return !!i && i.complete && i.naturalWidth === 900 })()`)
	// Paste a PNG made in the page into the comment box.
	eval[bool](p, `(() => {
		const c = document.createElement("canvas"); c.width = 60; c.height = 40;
		const g = c.getContext("2d"); g.fillStyle = "#c03"; g.fillRect(0, 0, 60, 40);
		const bin = atob(c.toDataURL("image/png").split(",")[1]);
		const bytes = new Uint8Array(bin.length); for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
		const dt = new DataTransfer(); dt.items.add(new File([bytes], "image.png", {type: "image/png"}));
		const ta = document.querySelector("#body");
		ta.focus(); ta.value = "Here it is: ";
		ta.selectionStart = ta.selectionEnd = ta.value.length;
		ta.dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt, bubbles: true, cancelable: true}));
		return true })()`)
	p.waitFor("the reference in the text and the file in the input",
		`document.querySelector("#files").files.length === 1 && /!\[pasted-[0-9-]+\.png\]\(\/files\/[0-9a-f]{64}\/pasted-[0-9-]+\.png\)/.test(document.querySelector("#body").value)`)
	p.do(chromedp.Click(chromedp.CSS(`form[action$="/comments"] button[type=submit]:not([name])`)))
	p.waitFor("the comment's image, twice (attachment and Markdown)", `(() => {
		const imgs = [...document.querySelectorAll("article.comment img")];
		return imgs.length === 2 && imgs.every(i => i.complete && i.naturalWidth === 60) })()`)
	if got := typesOf(eventsAfter(t, s.DB, countEvents(t, s.DB)-2)); got != "comment_added attachment_added" {
		t.Fatalf("the pasted comment appended %q", got)
	}

	shots := ""
	if d := strings.TrimSpace(os.Getenv("BRAID_SCREENSHOTS")); d != "" {
		shots = screenshotDir(t)
		p.shot = shots
	}
	for _, w := range []int64{1280, 390} {
		if w < 500 {
			p.do(chromedp.EmulateViewport(w, 844, chromedp.EmulateMobile))
		} else {
			p.do(chromedp.EmulateViewport(w, 900))
		}
		p.visit(ticket)
		p.waitFor("the images", `[...document.querySelectorAll(".attachments img")].every(i => i.complete && i.naturalWidth > 0)`)
		if sw := eval[int64](p, `document.documentElement.scrollWidth`); sw > w {
			t.Errorf("ticket with attachments at %d px: page is %d px wide", w, sw)
		}
		if iw := eval[int64](p, `Math.round(document.querySelector(".attachments img").getBoundingClientRect().width)`); iw > w {
			t.Errorf("at %d px the 900 px image is drawn %d px wide: not scaled down", w, iw)
		}
		if shots != "" {
			p.screenshot(fmt.Sprintf("attachments-ticket-%d", w))
		}
	}
}
