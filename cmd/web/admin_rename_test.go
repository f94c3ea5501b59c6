package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A site admin renames someone from the admin page: username_changed with
// the admin as actor; the person signs in with the new name. Anyone else
// is refused (403), a bad or taken name is 422 beside the field, and
// neither appends anything.
func TestAdminRenamesSomeone(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	bob := newBrowser(t, s.URL).from("127.0.0.31")
	bob.register("bob")
	newBrowser(t, s.URL).from("127.0.0.32").register("carol")

	before := countEvents(t, s.DB)
	csrf := bob.form("/tickets/new", "", nil).Get("_csrf")
	if r := bob.post("/admin/rename", url.Values{"_csrf": {csrf}, "person": {"carol"}, "username": {"caroline"}}); r.status != http.StatusForbidden {
		t.Fatalf("bob renames carol: got %d, want 403", r.status)
	}
	for _, bad := range []struct{ person, name, says string }{
		{"bob", "x", "3"},
		{"bob", "carol", "taken"},
		{"nobody", "nemo", "There is nobody called"},
	} {
		r := ada.command("/admin", "/admin/rename", url.Values{"person": {bad.person}, "username": {bad.name}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, bad.says) || !strings.Contains(r.body, `aria-invalid="true"`) {
			t.Errorf("rename %s to %q: got %d, want 422 saying %q beside the field\n%.3000s", bad.person, bad.name, r.status, bad.says, r.body)
		}
	}
	if n := countEvents(t, s.DB); n != before {
		t.Fatalf("refused renames appended %d events", n-before)
	}

	if r := ada.command("/admin", "/admin/rename", url.Values{"person": {"bob"}, "username": {"robert"}}); r.status != http.StatusSeeOther {
		t.Fatalf("ada renames bob: got %d, want 303\n%.2000s", r.status, r.body)
	}
	n, actor, data := eventsOfType(t, s.DB, "username_changed")
	if n != 1 || actor != idOf(t, s.DB, "ada") || !strings.Contains(data, `"to":"robert"`) {
		t.Fatalf("username_changed: %d, actor %q (ada is %q), %s", n, actor, idOf(t, s.DB, "ada"), data)
	}
	wantStatus(t, "robert signs in", newBrowser(t, s.URL).from("127.0.0.33").signIn("robert", "correct horse"), http.StatusSeeOther)
	verifyDB(t, s.DB)
}
