package main

import (
	"net/http"
	"testing"
)

// TestWebhookJSON drives /p/{slug}/webhooks as a script: a token with the
// admin scope and JSON bodies; each answer is JSON (the webhook as it now
// is), and a bad body is a JSON 422 that appends nothing.
func TestWebhookJSON(t *testing.T) {
	s := startServer(t, fastHooks...)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	sc := script{t, s.URL, makeToken(t, ada, "ada", "hooks-bot", "read", "admin")}

	r := sc.do("POST", "/p/main/webhooks", `{"url":"http://127.0.0.1:9/hook","events":"ticket_opened"}`)
	id, _ := dig(r.json, "webhook", "id").(string)
	if r.status != http.StatusCreated || id == "" || r.location != "/p/main/webhooks/"+id || dig(r.json, "secret") == "" {
		t.Fatalf("create: got %d (Location %q)\n%s", r.status, r.location, r.raw)
	}
	r = sc.do("POST", "/p/main/webhooks/"+id, `{"url":"http://127.0.0.1:9/other","events":["x"]}`)
	if r.status != http.StatusUnprocessableEntity || dig(r.json, "error", "fields", "events") == nil {
		t.Fatalf("events as an array: got %d, want 422 naming events\n%s", r.status, r.raw)
	}
	before := countEvents(t, s.DB)
	for _, c := range []struct{ path, body string }{
		{"/p/main/webhooks", `{"url":"ftp://example.org/"}`},
		{"/p/main/webhooks", `{"url":"http://127.0.0.1:9/","secret":"x"}`},
		{"/p/main/webhooks/" + id + "/toggle", `{"on":2}`},
		{"/p/main/webhooks/" + id + "/redeliver", `{"position":999999}`},
	} {
		if r := sc.do("POST", c.path, c.body); r.status != http.StatusUnprocessableEntity || dig(r.json, "error", "code") != 422.0 {
			t.Errorf("%s %s: got %d, want JSON 422\n%.400s", c.path, c.body, r.status, r.raw)
		}
	}
	if n := countEvents(t, s.DB); n != before {
		t.Fatalf("refusals appended %d events", n-before)
	}
	r = sc.do("POST", "/p/main/webhooks/"+id, `{"url":"http://127.0.0.1:9/other","events":"ticket_closed"}`)
	if r.status != http.StatusOK || dig(r.json, "webhook", "url") != "http://127.0.0.1:9/other" {
		t.Fatalf("change: got %d\n%s", r.status, r.raw)
	}
	r = sc.do("POST", "/p/main/webhooks/"+id+"/toggle", `{"on":false}`)
	if r.status != http.StatusOK || dig(r.json, "webhook", "active") != false {
		t.Fatalf("turn off: got %d\n%s", r.status, r.raw)
	}
	if r := sc.do("GET", "/p/main/webhooks/"+id, ""); r.status != http.StatusOK || dig(r.json, "webhook", "url") != "http://127.0.0.1:9/other" {
		t.Fatalf("read back: got %d\n%s", r.status, r.raw)
	}
}
