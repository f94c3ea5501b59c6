package main

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// After a 409 on an edit, the page keeps the person's own title, body and
// labels in the inputs and shows the ticket as it is now beside them,
// read-only, saying who changed it; nothing is appended.
func TestEditConflictShowsBothSideBySide(t *testing.T) {
	s := startServer(t)
	alice, bob := newBrowser(t, s.URL).from("127.0.0.70"), newBrowser(t, s.URL).from("127.0.0.71")
	alice.register("alice")
	bob.register("bob")
	ticket := alice.open("Printer jams")

	mine := alice.form(ticket+"/edit", ticket, url.Values{"title": {"Printer jams on A3 <paper>"}, "body": {"Only with A3."}, "labels": {"printer"}})
	if a := bob.post(ticket, bob.form(ticket+"/edit", ticket, url.Values{"title": {"Printer on fire"}, "body": {"Smoke!"}})); a.status != http.StatusSeeOther {
		t.Fatalf("bob's edit: got %d, want 303\n%.500s", a.status, a.body)
	}
	before := countEvents(t, s.DB)
	a := alice.post(ticket, mine)
	if a.status != http.StatusConflict {
		t.Fatalf("alice's stale edit: got %d, want 409\n%.500s", a.status, a.body)
	}
	if n := countEvents(t, s.DB); n != before {
		t.Fatalf("the refused edit appended %d events", n-before)
	}
	input := regexp.MustCompile(`<input[^>]*id="title"[^>]*>`).FindString(a.body)
	if got := html.UnescapeString(input); !strings.Contains(got, `value="Printer jams on A3 <paper>"`) {
		t.Fatalf("the title input does not keep alice's title: %s", got)
	}
	if !strings.Contains(a.body, "Only with A3.</textarea>") {
		t.Fatalf("the body textarea does not keep alice's text")
	}
	current := regexp.MustCompile(`(?s)<section class="current".*?</section>`).FindString(a.body)
	for _, want := range []string{`<dd class="current-title">Printer on fire</dd>`, "Smoke!", "differs from yours"} {
		if !strings.Contains(current, want) {
			t.Fatalf("the current ticket beside the form lacks %q:\n%s", want, current)
		}
	}
	banner := regexp.MustCompile(`(?s)<section class="banner".*?</section>`).FindString(a.body)
	if !strings.Contains(banner, ">Bob</a>") || !strings.Contains(banner, "changed this ticket") || !strings.Contains(banner, "<time") {
		t.Fatalf("the note does not say who changed it when:\n%s", banner)
	}
	if strings.Contains(a.body, "version 2") || strings.Contains(a.body, "ticket_edited") {
		t.Fatalf("the page speaks of versions or event types")
	}
	// Saving again is a deliberate overwrite: her title wins.
	again := url.Values{}
	for k, v := range mine {
		again[k] = v
	}
	again.Set("version", regexp.MustCompile(`name="version" value="(\d+)"`).FindStringSubmatch(a.body)[1])
	if a := alice.post(ticket, again); a.status != http.StatusSeeOther {
		t.Fatalf("saving again: got %d, want 303", a.status)
	}
	if page := alice.get(ticket).body; !strings.Contains(page, "Printer jams on A3 &lt;paper&gt;") {
		t.Fatalf("alice's title is not on the ticket after saving again")
	}
}
