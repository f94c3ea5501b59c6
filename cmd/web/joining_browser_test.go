package main

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// The first person sees that they are admin, opens the admin page and
// makes an invitation link, at desktop and phone widths.
func TestAdminPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are slow; run without -short")
	}
	shots := screenshotDir(t)
	s := startSite(t)
	p := &person{tb: t, ctx: newChromium(t), base: s.URL, shot: shots}
	p.register("ada")
	p.waitFor("the welcome", `document.body.innerText.includes("You are the site's first person, so you are its admin.")`)
	p.do(chromedp.Click(chromedp.CSS(`header a[href="/admin"]`)))
	p.waitFor("the admin page", `location.pathname === "/admin" && document.body.innerText.includes("Registration is invite")`)
	p.do(chromedp.SetValue(chromedp.ID("role"), "admin"), chromedp.SendKeys(chromedp.ID("note"), "for Bob, the new release manager"),
		chromedp.Click(chromedp.CSS(`form[action="/admin/invitations"] button`)))
	p.waitFor("the link, once", `document.querySelector(".banner a") && document.querySelector(".banner a").href.includes("/join/")`)
	for _, w := range []int64{1280, 390} {
		p.do(chromedp.EmulateViewport(w, 900))
		p.waitFor("no sideways scrolling", `document.documentElement.scrollWidth <= document.documentElement.clientWidth`)
		p.screenshot("admin-invitation-" + map[int64]string{1280: "desktop", 390: "phone"}[w])
	}
	// Drawn again, the page lists the invitation but no longer its link.
	p.visit("/admin")
	p.waitFor("the invitation listed without its link", `document.body.innerText.includes("for Bob") && !document.body.innerHTML.includes("/join/")`)
	p.screenshot("admin-phone")
}
