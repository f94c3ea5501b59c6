package main

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestProfileInBrowser looks at a profile in real headless Chromium at a
// desktop and a phone width (screenshots kept), changes the display name
// through the form and sees it in the header, and deletes a comment
// through the confirmation page, all without a line of our JavaScript.
func TestProfileInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are slow; run without -short")
	}
	shots := screenshotDir(t)
	s := startServer(t)
	p := &person{tb: t, ctx: newChromium(t), base: s.URL, shot: shots}
	p.register("ada")
	p.visit("/tickets/new")
	p.do(chromedp.SendKeys(chromedp.ID("title"), "Printer on fire"), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	p.waitFor("the ticket", `location.pathname === "/tickets/1"`)
	p.do(chromedp.SendKeys(chromedp.ID("body"), "Smoke is coming out of tray 2."), chromedp.Click(chromedp.CSS(`form[action="/tickets/1/comments"] button`)))
	p.waitFor("the comment", `document.body.innerText.includes("Smoke is coming out")`)

	// Rename through the profile's form.
	p.visit("/people/ada")
	p.waitFor("the name field emptied", `(document.getElementById("display_name").value = "") === ""`)
	p.do(chromedp.SendKeys(chromedp.ID("display_name"), "Ada Lovelace"),
		chromedp.Click(chromedp.CSS(`form[action="/account/name"] button`)))
	p.waitFor("the new name in the header", `document.querySelector("header").innerText.includes("Ada Lovelace")`)
	for _, w := range []int64{1280, 390} {
		p.do(chromedp.EmulateViewport(w, 900))
		p.visit("/people/ada")
		p.waitFor("the activity", `document.body.innerText.includes("commented on #1 Printer on fire")`)
		p.waitFor("no sideways scrolling", `document.documentElement.scrollWidth <= document.documentElement.clientWidth`)
		p.screenshot("profile-" + map[int64]string{1280: "desktop", 390: "phone"}[w])
	}
	p.do(chromedp.EmulateViewport(1280, 900))
	p.visit("/tickets/1")
	p.waitFor("the author's display name", `document.querySelector("hgroup").innerText.includes("Ada Lovelace")`)
	p.screenshot("ticket-names-desktop")

	// Delete asks first.
	p.do(chromedp.Click(chromedp.CSS(`a[href="/tickets/1/comments/1/delete"]`)))
	p.waitFor("the confirmation", `location.pathname === "/tickets/1/comments/1/delete" && document.body.innerText.includes("Smoke is coming out")`)
	p.screenshot("comment-delete-confirm-desktop")
	p.do(chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	p.waitFor("the comment gone", `location.pathname === "/tickets/1" && !document.body.innerText.includes("Smoke is coming out")`)
}
