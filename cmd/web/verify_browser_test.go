package main

import (
	"database/sql"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestVerifyPageInBrowser looks at /verify, intact and broken, in real
// headless Chromium at a desktop and a phone width, keeping screenshots:
// the broken page leads with its alert and every page's footer says so.
func TestVerifyPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are slow; run without -short")
	}
	shots := screenshotDir(t)
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	ada.open("Export button does nothing")
	ada.open("Login fails")

	look := func(base, name, want string) {
		t.Helper()
		p := &person{tb: t, ctx: newChromium(t), base: base, shot: shots}
		for _, w := range []int64{1280, 390} {
			p.do(chromedp.EmulateViewport(w, 800))
			p.visit("/verify")
			p.waitFor(want, `document.body.innerText.includes(`+"`"+want+"`"+`)`)
			// Nothing may stick out sideways on a phone.
			p.waitFor("no sideways scrolling", `document.documentElement.scrollWidth <= document.documentElement.clientWidth`)
			p.screenshot(name + "-" + map[int64]string{1280: "desktop", 390: "phone"}[w])
		}
	}
	look(s.URL, "verify-intact", "Intact: 4 events")

	s.stop()
	cp := tampered(t, s.DB, func(db *sql.DB) {
		mustExec(t, db, `UPDATE payloads SET data = replace(data, 'Export', 'Exp0rt') WHERE position = 3`)
	})
	s2 := startServer(t, "--db", cp)
	look(s2.URL, "verify-broken", "The braid is broken at position 3")
	p := &person{tb: t, ctx: newChromium(t), base: s2.URL, shot: shots}
	p.visit("/login")
	p.waitFor("the footer's notice", `document.querySelector("footer").innerText.includes("Braid broken at position 3")`)
}
