package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// colorScheme makes the page's prefers-color-scheme light or dark.
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	})
}

// axeScript is axe-core from npm (package.json), injected through the
// DevTools protocol: the site's CSP would rightly refuse it as a script tag.
func axeScript(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		tb.Fatalf("axe-core is not installed (make test runs npm install): %v", err)
	}
	return string(b)
}

// axeCheck runs axe on the page and returns its serious and critical
// violations, one line each.
func axeCheck(p *person, axe string) []string {
	p.tb.Helper()
	if !eval[bool](p, `typeof window.axe === "object"`) {
		eval[bool](p, axe+"\n;true")
	}
	ctx, cancel := context.WithTimeout(p.ctx, 60e9)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}, resultTypes: ["violations"]})
		.then(r => r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
			.map(v => v.impact + " " + v.id + ": " + v.help + " — " + v.nodes.slice(0, 3).map(n => n.target.join(" ") + (n.failureSummary ? " (" + n.failureSummary.replace(/\s+/g, " ").slice(0, 200) + ")" : "")).join("; ")))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		p.tb.Fatalf("axe at %s: %v", p.location(), err)
	}
	return out
}

// TestAccessibility runs axe-core on every main page, signed in and out, at
// 1280 and 390 px, in light and in dark mode: no serious or critical
// violation (contrast, names, labels, landmarks). At 390 px it also opens
// the header's Menu and requires every link, and Sign out, on screen.
func TestAccessibility(t *testing.T) {
	if testing.Short() {
		t.Skip("browser suite")
	}
	axe := axeScript(t)
	s := startServer(t)
	p := &person{tb: t, ctx: newChromium(t), base: s.URL}
	p.register("ada") // site admin
	hb := newBrowser(t, s.URL)
	hb.register("bob")
	body := "Steps, see #1 and @ada:\n\n1. Open **export**\n2. Press ~~Save~~ Export\n\n```go\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n```\n\n" +
		"| browser | result |\n|---|---|\n| Firefox | fails |\n\n- [x] checked\n- [ ] not yet\n\n> a quote with a [link](https://example.com)"
	if a := hb.post("/tickets", hb.form("/tickets/new", "", url.Values{"title": {"زر التصدير لا يعمل"}, "body": {body}, "labels": {"bug, export"}})); a.status != http.StatusSeeOther {
		t.Fatalf("open: %d\n%.500s", a.status, a.body)
	}
	hb.post("/tickets/1/comments", hb.form("/tickets/1", "/tickets/1/comments", url.Values{"body": {"同じです。`Export` は何もしません。"}}))
	hb.post("/tickets/1/close", hb.form("/tickets/1", "/tickets/1/close", url.Values{}))

	pages := append([]string{"/tickets/1/edit", "/tickets?status=all", "/events/1", "/projects", "/p/main/people", "/p/main/history",
		"/tickets/1/comments/1/edit"}, signedInPages...)
	var problems []string
	check := func(where string) {
		for _, v := range axeCheck(p, axe) {
			problems = append(problems, where+": "+v)
		}
	}
	for _, w := range []int64{1280, 390} {
		if w < 500 {
			p.do(chromedp.EmulateViewport(w, 844, chromedp.EmulateMobile))
		} else {
			p.do(chromedp.EmulateViewport(w, 900))
		}
		for _, scheme := range []string{"light", "dark"} {
			p.do(colorScheme(scheme))
			for _, path := range pages {
				p.visit(path)
				p.waitFor(path, `document.readyState === "complete"`)
				check(fmt.Sprintf("%s %dpx %s", path, w, scheme))
			}
		}
		if w == 390 {
			// The menu: closed, the header is one line; open, every link
			// fits the screen, Sign out included.
			p.visit("/tickets")
			p.waitFor("the list", `document.readyState === "complete"`)
			if h := eval[float64](p, `document.querySelector("header").getBoundingClientRect().height`); h > 120 {
				t.Errorf("390 px: the closed header is %.0f px tall", h)
			}
			if eval[bool](p, `getComputedStyle(document.querySelector("#nav-links")).display !== "none"`) {
				t.Errorf("390 px: the links show before the menu is opened")
			}
			p.do(chromedp.Click(chromedp.CSS(`label[for=nav-toggle]`)))
			p.waitFor("the open menu", `getComputedStyle(document.querySelector("#nav-links")).display !== "none"`)
			off := eval[string](p, `[...document.querySelectorAll("#nav-links a, #nav-links button")].filter(e => { const r = e.getBoundingClientRect(); return r.width === 0 || r.right > innerWidth + 1 || r.left < 0 || r.height < 40 }).map(e => e.textContent.trim() + " " + Math.round(e.getBoundingClientRect().height) + "px").join(", ")`)
			if off != "" {
				t.Errorf("390 px, menu open: off screen, hidden or under 40 px tall: %s", off)
			}
			check("/tickets 390px menu open")
			if sw := eval[int64](p, `document.documentElement.scrollWidth`); sw > 390 {
				t.Errorf("390 px, menu open: page is %d px wide", sw)
			}
		}
	}
	// Signed out: sign-in and registration pages.
	p.do(chromedp.EmulateViewport(1280, 900), colorScheme("light"))
	p.visit("/tickets")
	p.do(chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)))
	p.waitFor("signed out", `location.pathname === "/login"`)
	for _, scheme := range []string{"light", "dark"} {
		p.do(colorScheme(scheme))
		for _, path := range []string{"/login", "/register", "/verify"} {
			p.visit(path)
			p.waitFor(path, `document.readyState === "complete"`)
			check(path + " signed out " + scheme)
		}
	}
	if len(problems) > 0 {
		t.Errorf("axe found %d serious or critical violations:\n%s", len(problems), strings.Join(problems, "\n"))
	}
}
