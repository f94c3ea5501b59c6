package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"braid/internal/anchor/anchortest"
)

// newChromium starts Debian's chromium, headless, as one person's browser.
func newChromium(tb testing.TB) context.Context {
	tb.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		tb.Fatalf("chromium is not installed (make test installs it): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath("/usr/bin/chromium"),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1200, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	tb.Cleanup(func() { cancelC(); cancelA() })
	// Start the browser now, so a failure to start is reported here.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// person drives one browser.
type person struct {
	tb   testing.TB
	ctx  context.Context
	base string
	shot string
}

func (p *person) do(steps ...chromedp.Action[chromedp.Void]) {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.tb.Fatalf("browser: %v (at %s)", err, p.location())
	}
}

func (p *person) location() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	l, _ := chromedp.Run(ctx, chromedp.Location())
	return l
}

func (p *person) visit(path string) { p.tb.Helper(); p.do(chromedp.Navigate(p.base + path)) }

// waitFor polls a JavaScript condition until it holds.
func (p *person) waitFor(what, js string) {
	p.tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.tb.Fatalf("waiting for %s: never true at %s\n%s", what, p.location(), p.text("main"))
}

func (p *person) text(css string) string {
	// Generous: under -race on a busy two-core machine a page can take
	// seconds to settle after its address changed.
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	return s
}

func (p *person) screenshot(name string) {
	p.tb.Helper()
	p.waitFor("the page laid out", `document.readyState === "complete" && document.documentElement.clientWidth > 0`)
	var png []byte
	var err error
	for try := 0; try < 5; try++ { // right after a navigation the page may not have a size yet
		ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		p.tb.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(p.shot, name+".png"), png, 0o644); err != nil {
		p.tb.Fatal(err)
	}
}

func (p *person) register(user string) {
	p.tb.Helper()
	p.visit("/register")
	p.do(
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("display_name"), strings.ToUpper(user[:1])+user[1:]),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse battery"),
		chromedp.SendKeys(chromedp.ID("password_confirmation"), "correct horse battery"),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
	)
	p.waitFor("the ticket list", `location.pathname === "/tickets" && !!document.querySelector("form[role=search]")`)
}

// screenshotDir is where browser tests keep their screenshots:
// $BRAID_SCREENSHOTS, else artifacts/screenshots at the repository's root.
func screenshotDir(tb testing.TB) string {
	tb.Helper()
	shots := os.Getenv("BRAID_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join("..", "..", "artifacts", "screenshots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		tb.Fatal(err)
	}
	return shots
}

// TestBrowserFlows is the end-to-end suite in real headless Chromium: two
// people share a ticket, every page is looked at, screenshots are kept.
func TestBrowserFlows(t *testing.T) {
	if testing.Short() {
		t.Skip("browser flows are slow; run without -short")
	}
	s := startServer(t)
	shots := screenshotDir(t)
	ada := &person{tb: t, ctx: newChromium(t), base: s.URL, shot: shots}
	bob := &person{tb: t, ctx: newChromium(t), base: s.URL, shot: shots}

	ada.register("ada")
	bob.register("bob")

	// Ada opens a ticket.
	ada.visit("/tickets/new")
	ada.screenshot("new-ticket")
	ada.do(
		chromedp.SendKeys(chromedp.ID("title"), "Export button does nothing <b>at all</b>"),
		chromedp.SendKeys(chromedp.ID("body"), "Steps:\n1. Open a ticket\n2. Press Export"),
		chromedp.SendKeys(chromedp.ID("labels"), "bug, export"),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
	)
	ada.waitFor("the ticket page", `location.pathname === "/tickets/1" && document.readyState === "complete" && !!document.querySelector("h1")`)
	if h := ada.text("h1"); !strings.Contains(h, "<b>at all</b>") {
		t.Fatalf("ticket heading %q: want the title shown as text, markup escaped", h)
	}

	// Bob comments, edits and deletes his own comment.
	bob.visit("/tickets/1")
	bob.do(
		chromedp.SendKeys(chromedp.CSS(`form[action="/tickets/1/comments"] textarea`), "Same here on Firefox."),
		chromedp.Click(chromedp.CSS(`form[action="/tickets/1/comments"] button`)),
	)
	bob.waitFor("bob's comment", `!!document.querySelector("#comment-1") && document.querySelector("#comment-1").innerText.includes("Firefox")`)
	bob.do(chromedp.Click(chromedp.CSS(`#comment-1 a[href="/tickets/1/comments/1/edit"]`)))
	bob.waitFor("the comment edit page", `location.pathname === "/tickets/1/comments/1/edit"`)
	bob.screenshot("edit-comment")
	bob.do(
		chromedp.SetValue(chromedp.ID("body"), "Same here on Firefox 140 and Chromium."),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
	)
	bob.waitFor("the edited comment", `location.pathname === "/tickets/1" && document.querySelector("#comment-1").innerText.includes("Chromium")`)
	// Deleting asks first, on a page of its own (no JavaScript needed).
	bob.do(chromedp.Click(chromedp.CSS(`#comment-1 a[href="/tickets/1/comments/1/delete"]`)))
	bob.waitFor("the confirmation", `location.pathname === "/tickets/1/comments/1/delete"`)
	bob.do(chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	bob.waitFor("the comment gone", `location.pathname === "/tickets/1" && !document.querySelector("#comment-1")`)
	bob.do(
		chromedp.SendKeys(chromedp.CSS(`form[action="/tickets/1/comments"] textarea`), "Still broken after the update."),
		chromedp.Click(chromedp.CSS(`form[action="/tickets/1/comments"] button`)),
	)
	bob.waitFor("bob's second comment", `!!document.querySelector("#comment-2")`)

	// Ada may not edit Bob's comment: the page says so, with a 403.
	ada.visit("/tickets/1")
	if n := ada.text("#comment-2"); strings.Contains(n, "Edit comment") {
		t.Fatalf("ada is offered to edit bob's comment: %q", n)
	}
	ada.visit("/tickets/1/comments/2/edit")
	if h := ada.text("h1"); h != "Not allowed" {
		t.Fatalf("ada editing bob's comment: heading %q, want Not allowed", h)
	}
	ada.screenshot("forbidden")

	// Both open the edit form; Bob saves first; Ada's save is refused with
	// 409 and the form shows Bob's change beside hers.
	ada.visit("/tickets/1/edit")
	bob.visit("/tickets/1/edit")
	bob.do(
		chromedp.SetValue(chromedp.ID("title"), "Export button does nothing (Firefox and Chromium)"),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
	)
	bob.waitFor("bob's edit saved", `location.pathname === "/tickets/1" && document.querySelector("h1").innerText.includes("Firefox and Chromium")`)
	ada.do(
		chromedp.SetValue(chromedp.ID("body"), "Steps:\n1. Open a ticket\n2. Press Export\n3. Nothing happens"),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
	)
	ada.waitFor("the conflict shown", `document.body.innerText.includes("changed this ticket") && document.body.innerText.includes("Firefox and Chromium") && document.querySelector("#body").value.includes("Nothing happens")`)
	ada.screenshot("edit-conflict")

	// Assign, close, reopen.
	ada.visit("/tickets/1")
	ada.do(
		chromedp.SetValue(chromedp.ID("assignee"), "bob"),
		chromedp.Click(chromedp.CSS(`form[action="/tickets/1/assign"] button`)),
	)
	ada.waitFor("assigned to Bob", `document.querySelector("hgroup").innerText.includes("assigned to Bob @bob")`)
	ada.do(chromedp.Click(chromedp.CSS(`form[action="/tickets/1/close"] button`)))
	ada.waitFor("closed", `!!document.querySelector(".status-closed") && !!document.querySelector('form[action="/tickets/1/reopen"]')`)
	ada.do(chromedp.Click(chromedp.CSS(`form[action="/tickets/1/reopen"] button`)))
	ada.waitFor("reopened", `!!document.querySelector(".status-open") && !!document.querySelector('form[action="/tickets/1/close"]')`)
	ada.screenshot("ticket")

	// The history lists every event of the ticket.
	ada.visit("/tickets/1/history")
	rows := ada.text("tbody")
	for _, typ := range []string{"ticket_opened", "comment_added", "comment_edited", "comment_deleted", "ticket_assigned", "ticket_closed", "ticket_reopened"} {
		if !strings.Contains(rows, typ) {
			t.Fatalf("history lacks %s:\n%s", typ, rows)
		}
	}
	ctx, cancel := context.WithTimeout(ada.ctx, 5*time.Second)
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("tbody tr").length`))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if n != 9 {
		t.Fatalf("history has %d rows, want 9 (open, 2 comments, comment edit, delete, edit, assign, close, reopen)", n)
	}
	ada.screenshot("history")

	// Time travel from the history: the ticket as of its second event.
	ada.do(chromedp.Click(chromedp.CSS(`tbody tr:nth-child(2) td:last-child a`)))
	ada.waitFor("the past ticket", `location.search.startsWith("?at=") && !!document.querySelector(".banner")`)
	ada.screenshot("time-travel")

	ada.visit("/tickets?status=all")
	ada.screenshot("list")
	// With JavaScript, htmx filters as one types: the results change in
	// place and the address follows.
	ada.visit("/tickets?status=all")
	ada.waitFor("htmx loaded", `typeof htmx !== "undefined"`)
	ada.do(chromedp.SendKeys(chromedp.ID("q"), "nomatchxyz"))
	ada.waitFor("live search without a page load", `document.querySelector("#results").innerText.includes("No tickets match") && location.search.includes("q=nomatchxyz") && !!document.querySelector("#q:focus")`)
	ada.do(chromedp.SetValue(chromedp.ID("q"), "Export"), chromedp.SendKeys(chromedp.ID("q"), " "))
	ada.waitFor("the ticket found again", `document.querySelector("#results").innerText.includes("Export button")`)
	ada.visit("/events")
	ada.screenshot("activity")
	ada.visit("/events/3")
	ada.screenshot("event")
	ada.visit("/tickets/new")
	ada.do(chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	ada.waitFor("the error beside the title", `!!document.querySelector("#title-error")`)
	ada.screenshot("new-ticket-error")

	// Anchor the head with a real (openssl) timestamp authority, then look
	// at /verify and the anchor's page as a visitor would.
	tsa := anchortest.NewTSA(t, "Browser")
	var out, errb strings.Builder
	if code := run(context.Background(), []string{"anchor", "--db", s.DB, "--witness", "rfc3161", "--tsa-url", tsa.URL, "--tsa-roots", tsa.Roots},
		func(string) string { return "" }, nil, &out, &errb); code != 0 {
		t.Fatalf("web anchor: exit %d: %s", code, errb.String())
	}
	ada.visit("/verify")
	ada.waitFor("an intact verdict with the anchor", `document.body.innerText.includes("Intact") && document.body.innerText.includes("rfc3161")`)
	ada.screenshot("verify")
	ada.visit("/anchors/1")
	ada.waitFor("the anchor page", `document.body.innerText.includes("matches the log")`)
	ada.screenshot("anchor")

	r := verifyDB(t, s.DB)
	if r.Events != int64(countEvents(t, s.DB)) {
		t.Fatalf("verified %d of %d events", r.Events, countEvents(t, s.DB))
	}
	fmt.Fprintf(os.Stderr, "screenshots in %s\n", shots)
}
