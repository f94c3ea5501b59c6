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
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// axePages are the main pages axe-core looks at, signed in.
var axePages = []string{"/tickets", "/tickets/1", "/tickets/new", "/tickets/1/edit", "/tickets/1/history",
	"/events", "/events/1", "/verify", "/people/ada", "/inbox", "/projects", "/p/acme/people", "/admin",
	"/tickets?q=export"}

// colourScheme makes the page see prefers-color-scheme: scheme ("light" or "dark").
func colourScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	})
}

// viewport sets the window width: a phone (mobile emulation) below 500 px.
func viewport(p *person, w int64) {
	p.tb.Helper()
	if w < 500 {
		p.do(chromedp.EmulateViewport(w, 844, chromedp.EmulateMobile))
	} else {
		p.do(chromedp.EmulateViewport(w, 900))
	}
}

// axeSource is node_modules/axe-core/axe.min.js (package.json): injected
// by Evaluate, since the CSP refuses it as a script tag.
func axeSource(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		tb.Fatalf("axe-core is not installed (npm install): %v", err)
	}
	return string(b)
}

// axeCheck runs axe-core on the page and returns its serious and critical
// violations, one line each, "" when there are none.
func axeCheck(p *person, src string) string {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](src+"\n;true")); err != nil {
		p.tb.Fatalf("inject axe-core: %v", err)
	}
	js := `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
		.filter(v => v.impact === "serious" || v.impact === "critical")
		.map(v => v.impact + " " + v.id + ": " + v.help + " — " + v.nodes.slice(0, 3).map(n => n.target.join(" ") + " (" + (n.failureSummary || "").replace(/\s+/g, " ").slice(0, 160) + ")").join("; "))
		.join("\n"))`
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.tb.Fatalf("axe.run: %v", err)
	}
	return out
}

// a11ySite is a site with one of everything the main pages show: a ticket
// with Markdown, code, a table and task lists, an Arabic title, comments,
// an edit (history), a project; ada (site admin) is signed in in Chromium.
func a11ySite(t *testing.T) (*person, *browser) {
	t.Helper()
	s := startServer(t)
	p := &person{tb: t, ctx: newChromium(t), base: s.URL}
	p.register("ada")
	hb := newBrowser(t, s.URL)
	hb.register("bob")
	body := "## Steps\n\n1. Open **the export** page\n2. Press ~~Save~~ Export\n\n" +
		"```go\nfunc main() {\n\t// print it\n\tfmt.Println(\"export\", 42)\n}\n```\n\n" +
		"| browser | result |\n|---|---|\n| Firefox | fails |\n| Chromium | works |\n\n- [x] reproduced\n- [ ] fixed\n\n> quoted `[ ]` text\n\nSee #1 and @ada, https://example.com/a."
	a := hb.post("/tickets", hb.form("/tickets/new", "", url.Values{"title": {"تعذر تسجيل الدخول"}, "body": {body}, "labels": {"bug, export"}}))
	if a.status != http.StatusSeeOther {
		t.Fatalf("open: %d\n%s", a.status, a.body)
	}
	hb.post("/tickets/1/comments", hb.form("/tickets/1", "/tickets/1/comments", url.Values{"body": {"ログインできません。エクスポートも動きません。"}}))
	hb.post("/tickets/1/comments", hb.form("/tickets/1", "/tickets/1/comments", url.Values{"body": {"Same here: `Export` does nothing, @ada see position:1."}}))
	f := hb.form("/tickets/1/edit", "/tickets/1", nil)
	f.Set("body", body+"\n\nEdited: also on Safari.")
	hb.post("/tickets/1", f)
	hb.post("/tickets", hb.form("/tickets/new", "", url.Values{"title": {"Export button does nothing on a phone"}}))
	p.visit("/projects")
	p.do(chromedp.Evaluate[chromedp.Void](`(() => { const f = document.querySelector('form[action="/projects"]');
		f.querySelector('[name=slug]').value = "acme"; f.querySelector('[name=name]').value = "Acme rockets"; f.submit() })()`))
	p.waitFor("the project", `!!document.querySelector('a[href="/p/acme"]')`)
	return p, hb
}

// TestAccessibility runs axe-core on every main page, light and dark, at
// 1280 and 390 px: no serious or critical violation.
func TestAccessibility(t *testing.T) {
	if testing.Short() {
		t.Skip("browser suite")
	}
	p, _ := a11ySite(t)
	src := axeSource(t)
	// Every page in light and dark at 1280 and 390 px takes minutes on two
	// busy cores: by default each page is looked at once, the four
	// combinations taken in turn (so each is covered); BRAID_A11Y_FULL=1
	// looks at every page in all four.
	full := os.Getenv("BRAID_A11Y_FULL") != ""
	type combo struct {
		scheme string
		w      int64
	}
	combos := []combo{{"light", 1280}, {"dark", 390}, {"dark", 1280}, {"light", 390}}
	n := 0
	check := func(pages []string) {
		for _, path := range pages {
			for i, c := range combos {
				if !full && i != n%len(combos) {
					continue
				}
				p.do(colourScheme(c.scheme))
				viewport(p, c.w)
				p.visit(path)
				p.waitFor(path, `document.readyState === "complete"`)
				if v := axeCheck(p, src); v != "" {
					t.Errorf("%s (%s, %d px):\n%s", path, c.scheme, c.w, v)
				}
			}
			n++
		}
	}
	check(axePages)
	viewport(p, 1280) // Sign out in the header's row
	p.signOut()
	check([]string{"/login", "/register"})
}

// TestAccessibilityCatches shows the check fails: a form field whose label
// is taken away is reported.
func TestAccessibilityCatches(t *testing.T) {
	if testing.Short() {
		t.Skip("browser suite")
	}
	s := startServer(t)
	p := &person{tb: t, ctx: newChromium(t), base: s.URL}
	p.visit("/login")
	p.waitFor("the page", `document.readyState === "complete"`)
	src := axeSource(t)
	if v := axeCheck(p, src); v != "" {
		t.Fatalf("before: %s", v)
	}
	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("label").forEach(l => { l.replaceWith(...[...l.childNodes].filter(n => n.nodeType !== 3)) })`))
	v := axeCheck(p, src)
	if !strings.Contains(v, "label") {
		t.Fatalf("a field without a label was not reported: %q", v)
	}
	t.Logf("reported: %s", v)
}

// TestPhoneMenu opens the header's menu at 390 px on every signed-in page:
// nothing off the screen (Sign out included), every entry ≥ 44 px tall.
func TestPhoneMenu(t *testing.T) {
	if testing.Short() {
		t.Skip("browser suite")
	}
	p, _ := a11ySite(t)
	viewport(p, 390)
	for _, path := range axePages {
		p.visit(path)
		p.waitFor(path, `document.readyState === "complete"`)
		if !eval[bool](p, `getComputedStyle(document.querySelector("header details.menu > summary")).display !== "none" && !document.querySelector("header details.menu").open`) {
			t.Fatalf("%s: no closed menu at 390 px", path)
		}
		p.do(chromedp.Click(chromedp.CSS(`header details.menu > summary`)))
		p.waitFor("the menu open", `document.querySelector("header details.menu").open`)
		bad := eval[string](p, `[...document.querySelectorAll("header summary, header details.menu li > a, header details.menu button")].filter(e => {
			const r = e.getBoundingClientRect(); return r.left < 0 || r.right > 390 || r.height < 44 || r.width < 44 }).map(e => e.textContent.trim() + " " + JSON.stringify(e.getBoundingClientRect())).join("; ")`)
		if bad != "" {
			t.Errorf("%s: menu entries off the screen or under 44 px: %s", path, bad)
		}
		if sw := eval[int64](p, `document.documentElement.scrollWidth`); sw > 390 {
			t.Errorf("%s with the menu open: %d px wide", path, sw)
		}
		if !eval[bool](p, `[...document.querySelectorAll("header details.menu button")].some(b => b.textContent.includes("Sign out") && b.getBoundingClientRect().height > 0)`) {
			t.Errorf("%s: no Sign out in the open menu", path)
		}
	}
	// Wide: no menu button, the links in a row.
	viewport(p, 1280)
	p.visit("/tickets")
	if !eval[bool](p, `getComputedStyle(document.querySelector("header details.menu > summary")).display === "none" && document.querySelector('header a[href="/projects"]').getBoundingClientRect().height > 0`) {
		t.Errorf("at 1280 px the header's links are hidden")
	}

}

// TestScreenshots takes the list, a ticket (Markdown, a Go code block, an
// Arabic title, a Japanese comment), its history and search results at
// 1280 and 390 px, light and dark, into $BRAID_SCREENSHOTS when it is set;
// always it checks that "#1" stays outside the right-to-left title.
func TestScreenshots(t *testing.T) {
	if testing.Short() {
		t.Skip("browser suite")
	}
	p, _ := a11ySite(t)
	if strings.TrimSpace(os.Getenv("BRAID_SCREENSHOTS")) != "" {
		p.shot = screenshotDir(t)
	}
	pages := map[string]string{"list": "/tickets", "ticket": "/tickets/1", "history": "/tickets/1/history", "search": "/tickets?q=export"}
	for _, scheme := range []string{"light", "dark"} {
		p.do(colourScheme(scheme))
		for _, w := range []int64{1280, 390} {
			viewport(p, w)
			for _, name := range []string{"list", "ticket", "history", "search"} {
				p.visit(pages[name])
				p.waitFor(name, `document.readyState === "complete"`)
				if name == "ticket" {
					// The title's text is right-to-left: the number sits to its
					// right on the same line, or on a line of its own (a phone).
					where := eval[string](p, `(() => { const t = document.querySelector("h1 bdi.title"), n = document.querySelector("h1 .ticket-number");
						const a = t.getBoundingClientRect(), b = n.getBoundingClientRect();
						return getComputedStyle(t).direction + " " + (Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) < b.height / 2 || b.left >= a.right - 0.5 ? "outside" : "inside") })()`)
					if where != "rtl outside" {
						t.Errorf("%s %d px: the title is %q of #1", scheme, w, where)
					}
				}
				if p.shot != "" {
					p.screenshot(fmt.Sprintf("s6-%s-%d-%s", name, w, scheme))
				}
			}
		}
	}
}
