package main

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"testing"
	"time"
)

// BenchmarkTicketPage200Markdown loads, signed in, a ticket page with 200
// Markdown comments (lists, code, a table, #refs, @names) and reports the
// median page time:
//
//	go test -run XXX -bench TicketPage200Markdown -benchtime 200x ./cmd/web
func BenchmarkTicketPage200Markdown(b *testing.B) {
	s := startServer(b)
	ada := newBrowser(b, s.URL)
	ada.register("ada")
	tpath := ada.open("Markdown everywhere")
	f := ada.form(tpath, tpath+"/comments", url.Values{})
	for i := 0; i < 200; i++ {
		f.Set("command_id", fmt.Sprintf("%032x", i+1))
		f.Set("body", fmt.Sprintf("Comment %d: see #1 and @ada, **bold** and `code`.\n\n- one\n- [x] two\n\n"+
			"```go\nfunc f%d() int { return %d }\n```\n\n| a | b |\n|---|---|\n| %d | ~~x~~ |\n", i, i, i, i))
		if a := ada.post(tpath+"/comments", f); a.status != http.StatusSeeOther {
			b.Fatalf("comment %d: %d\n%s", i, a.status, a.body)
		}
	}
	if a := ada.get(tpath); a.status != http.StatusOK {
		b.Fatalf("ticket: %d", a.status)
	}
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if a := ada.get(tpath); a.status != http.StatusOK {
			b.Fatalf("ticket: %d", a.status)
		}
		times = append(times, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
}
