package main

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// TestOddQueries sends odd query strings to every read with a text or an
// integer parameter: each answers 200 or a clear 4xx, never 500, never a
// page of nonsense, and nothing is appended.
func TestOddQueries(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	ada.open("Export button does nothing")
	ada.open(`Say "hello" NEAR(here)`)
	before := countEvents(t, s.DB)
	q := func(v string) string { return "/tickets?status=all&q=" + url.QueryEscape(v) }
	cases := []struct {
		name       string
		path       string
		wantStatus int
		wantBody   string // "" for no check
	}{
		{"search NUL", "/tickets?q=%00", 200, "Page 1 of 1"},
		{"search NUL inside a word", q("export\x00"), 200, "Export button"},
		{"search quote", q(`"`), 200, ""},
		{"search quoted word", q(`"hello"`), 200, "NEAR(here)"},
		{"search star", q("*"), 200, ""},
		{"search NEAR(", q("NEAR("), 200, "NEAR(here)"},
		{"search AND", q("AND"), 200, ""},
		{"search minus", q("-"), 200, ""},
		{"search caret", q("^"), 200, ""},
		{"search colon", q(":"), 200, ""},
		{"search unknown filter", q("title:export"), 422, "unknown filter title:"},
		{"search paren", q("("), 200, ""},
		{"search unicode", q("Ünïcödé 漢字 🙂"), 200, ""},
		{"search escape sequence", q("\x1b[31m"), 200, ""},
		{"search not UTF-8", "/tickets?q=%FF", 422, "not valid UTF-8"},
		{"search 10,000 characters", q(strings.Repeat("x", 10000)), 422, "Keep the search to 1000 characters"},
		{"search 50 words", q(strings.Repeat("a ", 50)), 422, "at most 40 words"},
		{"page huge", "/tickets?status=all&page=737869762948382065", 200, "Page 1 of 1"},
		{"page past int64", "/tickets?status=all&page=99999999999999999999999", 200, "Page 1 of 1"},
		{"page zero", "/tickets?status=all&page=0", 200, "Page 1 of 1"},
		{"page negative", "/tickets?status=all&page=-5", 200, "Page 1 of 1"},
		{"page very negative", "/tickets?status=all&page=-99999999999999999999999", 200, "Page 1 of 1"},
		{"page not a number", "/tickets?status=all&page=two", 422, "page is a whole number"},
		{"at past the head", "/tickets/1?at=9223372036854775807", 404, "the log has only " + strconv.Itoa(before) + " events"},
		{"at one past the head", "/tickets/1?at=" + strconv.Itoa(before+1), 404, "the log has only"},
		{"at the head", "/tickets/1?at=" + strconv.Itoa(before), 200, "Export button"},
		{"at past int64", "/tickets/1?at=9223372036854775808", 422, "at is a log position"},
		{"at zero", "/tickets/1?at=0", 422, "at is a log position"},
		{"at negative", "/tickets/1?at=-1", 422, "at is a log position"},
		{"as_of in the future is now", "/tickets/1?as_of=2999-01-01T00:00:00Z", 200, "(as of 2999-01-01T00:00:00Z)"},
		{"as_of past year 9999", "/tickets/1?as_of=10000-01-01T00:00:00Z", 422, "RFC 3339"},
		{"as_of long ago", "/tickets/1?as_of=2000-01-01T00:00:00Z", 404, "no events yet"},
		{"as_of garbage", "/tickets/1?as_of=yesterday", 422, "RFC 3339"},
		{"ticket id huge", "/tickets/9223372036854775807", 404, ""},
		{"ticket id past int64", "/tickets/9223372036854775808", 404, ""},
		{"events before huge", "/events?before=9223372036854775807", 200, "ticket_opened"},
		{"events before zero", "/events?before=0", 422, "before is a log position"},
		{"events before negative", "/events?before=-3", 422, "before is a log position"},
		{"events before past int64", "/events?before=9223372036854775808", 422, "before is a log position"},
		{"event huge", "/events/9223372036854775807", 404, ""},
		{"event negative", "/events/-1", 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := ada.get(c.path)
			if a.status != c.wantStatus || !strings.Contains(a.body, c.wantBody) {
				t.Fatalf("GET %s: got %d, want %d with %q:\n%.2000s", c.path, a.status, c.wantStatus, c.wantBody, a.body)
			}
			if a.status == http.StatusInternalServerError {
				t.Fatalf("GET %s: 500", c.path)
			}
		})
	}
	// A time in the future shows the ticket at the head, a position that exists.
	a := ada.do("GET", "/tickets/1?as_of=2999-01-01T00:00:00Z", nil, "Accept", "application/json")
	if a.status != 200 || !strings.Contains(a.body, `"as_of_position":`+strconv.Itoa(before)) {
		t.Fatalf("as_of in the future as JSON: got %d %s; want 200 at position %d", a.status, a.body, before)
	}
	// The list's JSON says which page it shows.
	a = ada.do("GET", "/tickets?status=all&page=737869762948382065", nil, "Accept", "application/json")
	if a.status != 200 || !strings.Contains(a.body, `"page":1,`) {
		t.Fatalf("huge page as JSON: got %d %s; want 200 and page 1", a.status, a.body)
	}
	if n := countEvents(t, s.DB); n != before {
		t.Fatalf("reads appended %d events", n-before)
	}
}
