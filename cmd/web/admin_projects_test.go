package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The operator grants and revokes project roles with the site stopped
// (actor system); web admin projects lists who holds what; a bad role or
// an unknown project is refused with nothing appended.
func TestAdminGrantRevokeCLI(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	newBrowser(t, s.URL).from("127.0.0.21").register("bob")
	if r := ada.command("/projects", "/projects", url.Values{"slug": {"acme"}, "name": {"Acme rockets"}}); r.status != http.StatusSeeOther {
		t.Fatalf("create acme: %d\n%.600s", r.status, r.body)
	}
	if code, _, errb := runWeb(t, "admin", "grant", "--db", s.DB, "bob", "acme", "viewer"); code == 0 || !strings.Contains(errb, "stop it first") {
		t.Fatalf("grant beside a running site: exit %d %s", code, errb)
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("server exit %d", code)
	}
	before := countEvents(t, s.DB)
	for _, bad := range [][]string{
		{"bob", "acme", "king"},
		{"bob", "nope", "viewer"},
		{"nobody", "acme", "viewer"},
		{"bob", "acme"},
	} {
		if code, _, errb := runWeb(t, append([]string{"admin", "grant", "--db", s.DB}, bad...)...); code == 0 || errb == "" || strings.Count(strings.TrimSpace(errb), "\n") > 0 {
			t.Errorf("grant %v: exit %d, stderr %q; want a failure on one line", bad, code, errb)
		}
	}
	if n := countEvents(t, s.DB); n != before {
		t.Fatalf("refused grants appended %d events", n-before)
	}
	code, out, errb := runWeb(t, "admin", "grant", "bob", "acme", "viewer", "--db", s.DB)
	if code != 0 || !strings.Contains(out, "bob is now viewer in acme") {
		t.Fatalf("grant: exit %d %q %s", code, out, errb)
	}
	if n, actor, _ := eventsOfType(t, s.DB, "project_role_granted"); n != 1 || actor != "system" {
		t.Fatalf("project_role_granted: %d, actor %q; want 1 by system", n, actor)
	}
	code, out, errb = runWeb(t, "admin", "projects", "--db", s.DB)
	if code != 0 || !strings.Contains(out, "acme") || !strings.Contains(out, "Acme rockets") || !strings.Contains(out, "bob viewer") || !strings.Contains(out, "main") {
		t.Fatalf("projects: exit %d\n%s%s", code, out, errb)
	}

	// bob reads acme now.
	s2 := startServer(t, "--db", s.DB)
	bob := newBrowser(t, s2.URL)
	wantStatus(t, "bob signs in", bob.signIn("bob", "correct horse"), http.StatusSeeOther)
	wantStatus(t, "bob reads acme", bob.get("/p/acme"), http.StatusOK)
	if code := s2.stop(); code != 0 {
		t.Fatalf("server exit %d", code)
	}

	code, out, errb = runWeb(t, "admin", "revoke", "--db", s.DB, "bob", "acme")
	if code != 0 || !strings.Contains(out, "bob no longer has a role in acme") {
		t.Fatalf("revoke: exit %d %q %s", code, out, errb)
	}
	if n, actor, _ := eventsOfType(t, s.DB, "project_role_revoked"); n != 1 || actor != "system" {
		t.Fatalf("project_role_revoked: %d, actor %q; want 1 by system", n, actor)
	}
	if _, out, _ = runWeb(t, "admin", "projects", "--db", s.DB); strings.Contains(out, "bob viewer") {
		t.Fatalf("projects after revoke still lists bob:\n%s", out)
	}
	verifyDB(t, s.DB)
}
