package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"braid/internal/events"
)

// FuzzBulk sends the list's bulk form: no 5xx ever; a refusal of the whole
// request (4xx) appends nothing; a 200 lists each ticket.
func FuzzBulk(f *testing.F) {
	h := newFuzzHarness(f)
	addBig(f, func(s string, c bool) []any { return []any{s, "close", "", "", events.NewID(), c} })
	f.Add("1", "label", "Bug", "", events.NewID(), false)
	f.Add("1,1,2", "reopen", "", "", "", false)
	f.Add("1", "assign", "", "nobody\x00", events.NewID(), true)
	f.Fuzz(func(t *testing.T, tickets, action, label, assignee, commandID string, chunked bool) {
		tok, _ := h.page(t, h.user, "/tickets?status=all")
		form := url.Values{"_csrf": {tok}, "tickets": {tickets}, "action": {action}, "label": {label}, "assignee": {assignee}, "command_id": {commandID}}
		enc := form.Encode()
		req, err := http.NewRequest(http.MethodPost, h.s.URL+"/tickets/bulk", strings.NewReader(enc))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if chunked {
			req.Body, req.ContentLength = io.NopCloser(strings.NewReader(enc)), -1
		}
		for _, ck := range h.user.Jar.Cookies(req.URL) {
			req.AddCookie(ck)
		}
		before := h.count(t)
		res, err := h.user.Transport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		switch {
		case res.StatusCode >= 500:
			t.Fatalf("bulk: got %d, want no 5xx\n%.2000s", res.StatusCode, body)
		case len(enc) > maxBody && res.StatusCode != http.StatusRequestEntityTooLarge:
			t.Errorf("bulk with a %d-byte body: got %d, want 413", len(enc), res.StatusCode)
		case res.StatusCode != http.StatusOK && h.count(t) != before:
			t.Fatalf("bulk refused with %d but the log grew", res.StatusCode)
		case res.StatusCode == http.StatusOK:
			h.checkLog(t)
		}
	})
}

// FuzzSaveView sends the save-view form: no 5xx; a refusal appends nothing.
func FuzzSaveView(f *testing.F) {
	h := newFuzzHarness(f)
	addBig(f, func(s string, c bool) []any { return []any{s, "status=open", events.NewID(), c} })
	f.Add("mine", "sort=comments&author=ada", events.NewID(), false)
	f.Add("x", "evil=1", "", true)
	f.Add("y", "%zz", events.NewID(), false)
	f.Fuzz(func(t *testing.T, name, query, commandID string, chunked bool) {
		h.command(t, "/tickets", "/tickets/views", url.Values{"name": {name}, "query": {query}, "command_id": {commandID}}, chunked, true)
	})
}
