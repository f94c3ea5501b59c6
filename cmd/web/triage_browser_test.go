package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// press presses each key as a keyboard does: one keyDown carrying the
// text it types (so a keydown handler's preventDefault stops the typing,
// as it does for a person) and a keyUp. chromedp.KeyEvent sends the text
// as a separate char event, which nothing can cancel.
func press(keys string, opts ...chromedp.KeyOption) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, r := range keys {
			evs := kb.Encode(r)
			down, up := *evs[0], *evs[len(evs)-1]
			if len(evs) == 3 {
				down.Text, down.UnmodifiedText = evs[1].Text, evs[1].UnmodifiedText
			}
			for _, o := range opts {
				o(&down)
				o(&up)
			}
			if down.Modifiers&^int64(chromedp.ModifierShift) != 0 {
				down.Text, down.UnmodifiedText = "", ""
			}
			for _, k := range []input.DispatchKeyEventParams{down, up} {
				if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// The keyboard shortcuts in Chromium: / focuses the search, j/k move the
// selection, Enter opens it, e edits, ? lists them, c opens the new-ticket
// page; none fires while typing (a c typed in a textarea or the search is
// a c) nor with Ctrl held.
func TestTriageShortcutsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser suite")
	}
	s := startServer(t)
	p := &person{tb: t, ctx: newChromium(t), base: s.URL}
	p.register("ada")
	hb := newBrowser(t, s.URL)
	hb.register("bob")
	for _, title := range []string{"first", "second", "third"} {
		if a := hb.post("/tickets", hb.form("/tickets/new", "", url.Values{"title": {title}})); a.status != http.StatusSeeOther {
			t.Fatalf("open: %d", a.status)
		}
	}
	settle := func() { time.Sleep(300 * time.Millisecond) } // time for a navigation a key must not start
	key := func(k string, opts ...chromedp.KeyOption) { p.do(press(k, opts...)) }

	p.visit("/tickets")
	p.waitFor("the list", `document.querySelectorAll("tr[data-ticket]").length === 3 && document.readyState === "complete"`)
	key("/")
	p.waitFor("the search focused", `document.activeElement && document.activeElement.id === "q"`)
	key("c")
	settle()
	if got := eval[string](p, `location.pathname + " " + document.getElementById("q").value`); got != "/tickets c" {
		t.Fatalf("c typed in the search: got %q, want /tickets and a c in the box", got)
	}
	p.visit("/tickets")
	p.waitFor("the list", `document.querySelectorAll("tr[data-ticket]").length === 3 && document.readyState === "complete"`)
	key("j")
	key("j")
	key("k")
	key("j")
	if got := eval[string](p, `[...document.querySelectorAll("tr.kbd-current")].map(r => r.dataset.ticket).join()`); got != "2" {
		t.Fatalf("after j j k j the chosen row is %q, want ticket 2 (the second, newest first)", got)
	}
	key("c", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	settle()
	if got := p.location(); !strings.HasSuffix(got, "/tickets") {
		t.Fatalf("Ctrl+c moved to %s", got)
	}
	key("\r")
	p.waitFor("ticket 2", `location.pathname === "/tickets/2" && document.readyState === "complete" && !!document.querySelector("a[data-shortcut=edit]")`)
	key("e")
	p.waitFor("the edit page", `location.pathname === "/tickets/2/edit" && !!document.querySelector("textarea")`)
	p.do(chromedp.Click(chromedp.CSS("textarea")), press("c"))
	settle()
	if got := eval[string](p, `location.pathname + " " + document.querySelector("textarea").value.endsWith("c")`); got != "/tickets/2/edit true" {
		t.Fatalf("c typed in a textarea: got %q, want still on the edit page with a c typed", got)
	}
	p.visit("/tickets")
	p.waitFor("the list", `document.querySelectorAll("tr[data-ticket]").length === 3 && document.readyState === "complete"`)
	key("?")
	p.waitFor("the shortcuts", `!!document.querySelector("dialog#shortcuts-help[open]")`)
	if got := p.text("dialog#shortcuts-help"); !strings.Contains(got, "New ticket") {
		t.Errorf("shortcuts list: %q", got)
	}
	key("\u001b") // Escape closes it
	p.waitFor("the shortcuts closed", `!document.querySelector("dialog#shortcuts-help[open]")`)
	key("c")
	p.waitFor("the new-ticket page", `location.pathname === "/tickets/new"`)
}
