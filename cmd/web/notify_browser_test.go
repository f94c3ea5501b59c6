package main

import (
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestInboxInBrowser looks at /inbox in real headless Chromium at a desktop
// and a phone width, keeping screenshots: the header's count, unread lines
// marked, nothing sticking out sideways; marking all read empties the count.
func TestInboxInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are slow; run without -short")
	}
	shots := screenshotDir(t)
	s := startServer(t)
	p := &person{tb: t, ctx: newChromium(t), base: s.URL, shot: shots}
	p.register("alice")
	p.visit("/tickets/new")
	p.do(chromedp.SendKeys(chromedp.ID("title"), "Printer on fire in the third-floor copy room"),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	p.waitFor("the ticket", `location.pathname === "/tickets/1"`)
	bob := newBrowser(t, s.URL).from("127.0.0.60")
	bob.register("bob")
	bob.comment("/tickets/1", "Same here, and the fax smells of smoke.")
	bob.command("/tickets/1", "/tickets/1/assign", url.Values{"assignee": {"bob"}})
	bob.comment("/tickets/1", "@alice it is out now.")
	bob.command("/tickets/1", "/tickets/1/close", nil)

	for _, w := range []int64{1280, 390} {
		p.do(chromedp.EmulateViewport(w, 800))
		p.visit("/inbox")
		p.waitFor("the count in the header", `document.querySelector("#inbox-link .unread-count").textContent.startsWith("4")`)
		p.waitFor("four unread lines", `document.querySelectorAll("ul.inbox li.unread").length === 4`)
		p.waitFor("no sideways scrolling", `document.documentElement.scrollWidth <= document.documentElement.clientWidth`)
		p.screenshot("inbox-" + map[int64]string{1280: "desktop", 390: "phone"}[w])
	}
	p.do(chromedp.Click(chromedp.CSS(`form.mark-all button`)))
	p.waitFor("everything read", `document.querySelectorAll("ul.inbox li.unread").length === 0 && !document.querySelector("#inbox-link .unread-count")`)
}
