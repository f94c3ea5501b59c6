package main

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"braid/internal/events"
)

// commandsOf lists the commands that touched person's aggregate, in log
// order, each as its events' types joined by spaces.
func commandsOf(tb testing.TB, path, person string) []string {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT e.command_id, e.event_type FROM events e
		WHERE e.command_id IN (SELECT command_id FROM events WHERE aggregate_type = 'user' AND aggregate_id = ?)
		ORDER BY e.position`, person)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var order []string
	types := map[string][]string{}
	for rows.Next() {
		var id, typ string
		if err := rows.Scan(&id, &typ); err != nil {
			tb.Fatal(err)
		}
		if _, ok := types[id]; !ok {
			order = append(order, id)
		}
		types[id] = append(types[id], typ)
	}
	out := make([]string, len(order))
	for i, id := range order {
		out[i] = strings.Join(types[id], " ")
	}
	return out
}

// Joining with a passkey over HTTP, with a software authenticator: bad
// names are 422 and a used link 404, appending nothing; the join is one
// command (user_registered, passkey_added, invitation_used); the person
// has no password (sign-in by password refused) until they set one on
// their profile, with no current password asked.
func TestJoinWithPasskey(t *testing.T) {
	const origin = "https://braid.test"
	s := startServer(t, "--base-url", origin)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	token := ada.invite("member")
	key := newSoftKey(t, origin, "braid.test")
	bob := newBrowser(t, s.URL).from("127.0.0.90")
	page := "/join/" + token
	options := "/join/" + token + "/passkey/options"
	if p := bob.get(page); !strings.Contains(p.body, `id="passkey-join"`) {
		t.Fatalf("the join page offers no passkey:\n%.2000s", p.body)
	}

	before := countEvents(t, s.DB)
	for _, bad := range []url.Values{{"username": {"x"}}, {"username": {"ada"}}, {"username": {"bob"}, "display_name": {strings.Repeat("b", 65)}}} {
		if a := bob.post(options, bob.form(page, options, bad)); a.status != http.StatusUnprocessableEntity {
			t.Errorf("options for %v: got %d, want 422\n%.400s", bad, a.status, a.body)
		}
	}
	// An answer without the server's challenge is refused.
	if a, _ := bob.postJSON("/join/"+token+"/passkey?command_id="+events.NewID(), bob.form(page, options, nil).Get("_csrf"), []byte(`{}`)); a.status != http.StatusUnprocessableEntity {
		t.Errorf("an answer to no challenge: got %d, want 422", a.status)
	}
	if n := countEvents(t, s.DB); n != before {
		t.Fatalf("refused joins appended %d events", n-before)
	}

	f := bob.form(page, options, url.Values{"username": {"bob"}, "display_name": {"Bob Builder"}})
	res := bob.post(options, f)
	if res.status != http.StatusOK {
		t.Fatalf("options: %d %s", res.status, res.body)
	}
	var opts map[string]any
	json.Unmarshal([]byte(res.body), &opts)
	a, o := bob.postJSON("/join/"+token+"/passkey?command_id="+f.Get("command_id"), opts["csrf"].(string), key.create(opts))
	if a.status != http.StatusOK || o["username"] != "bob" {
		t.Fatalf("join with a passkey: %d %v", a.status, o)
	}
	if !passkeySignedIn(bob) {
		t.Fatal("not signed in after joining")
	}
	id := idOf(t, s.DB, "bob")
	if cmds := commandsOf(t, s.DB, id); len(cmds) != 1 || cmds[0] != "user_registered passkey_added invitation_used" {
		t.Fatalf("bob's commands: %q", cmds)
	}
	if r := newBrowser(t, s.URL).from("127.0.0.91").signIn("bob", ""); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("password sign-in for someone without one: %d", r.status)
	}
	// The link is spent.
	if r := newBrowser(t, s.URL).from("127.0.0.92").get(page); r.status != http.StatusNotFound {
		t.Fatalf("the used link: %d", r.status)
	}
	// The passkey signs him in from a fresh browser.
	visitor := newBrowser(t, s.URL).from("127.0.0.93")
	chal, csrf := visitor.passkeyOptions()
	if a, o := visitor.postJSON("/login/passkey", csrf, key.get(chal)); a.status != http.StatusOK || o["user"] != id {
		t.Fatalf("sign in with the joined passkey: %d %v", a.status, o)
	}
	// He sets a password: no current one asked.
	if p := bob.get("/people/bob"); !strings.Contains(p.body, "Set a password") {
		t.Fatalf("the profile offers no 'Set a password':\n%.3000s", p.body)
	}
	r := bob.command("/people/bob", "/account/password", url.Values{"new_password": {"correct horse"}, "new_password_confirmation": {"correct horse"}})
	if r.status != http.StatusSeeOther && r.status != http.StatusOK {
		t.Fatalf("set a password: %d\n%.2000s", r.status, r.body)
	}
	wantStatus(t, "bob signs in with his new password", newBrowser(t, s.URL).from("127.0.0.94").signIn("bob", "correct horse"), http.StatusSeeOther)
	// Now a change asks for the current one.
	if r := bob.command("/people/bob", "/account/password", url.Values{"new_password": {"another horse"}, "new_password_confirmation": {"another horse"}}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("a change without the current password: %d", r.status)
	}
	verifyDB(t, s.DB)
}
