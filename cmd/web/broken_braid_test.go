package main

import (
	"database/sql"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestBrokenBraidShown: an event changed in the database of a served site
// is reported at the top of /verify in an alert and in the footer of every
// page, found by the monitor without anyone opening /verify first.
func TestBrokenBraidShown(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	ada.open("Export button does nothing")
	ada.open("Login fails")
	if a := ada.get("/tickets"); strings.Contains(a.body, "Braid broken") || strings.Contains(a.body, `role="alert"`) {
		t.Fatalf("an intact log's footer says it is broken:\n%s", a.body)
	}
	s.stop()
	cp := tampered(t, s.DB, func(db *sql.DB) {
		mustExec(t, db, `UPDATE payloads SET data = replace(data, 'Export', 'Exp0rt') WHERE position = 3`)
	})
	s2 := startServer(t, "--db", cp)
	ada = newBrowser(t, s2.URL)
	if a := ada.post("/login", ada.form("/login", "", url.Values{"username": {"ada"}, "password": {"correct horse"}})); a.status != 303 {
		t.Fatalf("sign in: %d\n%s", a.status, a.body)
	}
	const footer = `<p class="braid-broken" role="alert"><strong>Braid broken at position 3</strong> — see <a href="/verify">/verify</a>`
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := ada.get("/tickets")
		if a.status != 200 {
			t.Fatalf("GET /tickets: %d", a.status)
		}
		if strings.Contains(a.body, footer) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the footer of /tickets never said the braid is broken:\n%s", a.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	a := ada.get("/verify")
	for _, want := range []string{`<div class="alert-broken" role="alert"><h2>The braid is broken at position 3</h2><p>hash mismatch`, footer} {
		if a.status != 200 || !strings.Contains(a.body, want) {
			t.Fatalf("GET /verify: %d, want %q in:\n%s", a.status, want, a.body)
		}
	}
	if i, j := strings.Index(a.body, "alert-broken"), strings.Index(a.body, "Anchors"); i < 0 || i > j {
		t.Fatalf("the alert is not at the top of /verify")
	}
	anon := newBrowser(t, s2.URL)
	if a := anon.get("/login"); !strings.Contains(a.body, footer) {
		t.Fatalf("a visitor's page does not say the braid is broken:\n%s", a.body)
	}
	a = anon.do("GET", "/verify", nil, "Accept", "application/json")
	if !strings.Contains(a.body, `"intact":false`) || !strings.Contains(a.body, `"position":3`) || !strings.Contains(a.body, `"current":true`) {
		t.Fatalf("GET /verify as JSON: %s", a.body)
	}
}
