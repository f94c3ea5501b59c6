package main

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var personIDRE = regexp.MustCompile(`^p_[a-z2-7]{20}$`)

// queryOne reads one row of the database at path.
func queryOne(tb testing.TB, path, query string, args []any, dest ...any) {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(query, args...).Scan(dest...); err != nil {
		tb.Fatalf("%s %v: %v", query, args, err)
	}
}

// idOf is the person id the users projection holds for username.
func idOf(tb testing.TB, path, username string) string {
	tb.Helper()
	var id string
	queryOne(tb, path, `SELECT id FROM users WHERE username = ?`, []any{username}, &id)
	return id
}

// rename changes b's username on their profile, re-entering password.
func (b *browser) rename(from, to, password string) answer {
	b.tb.Helper()
	return b.post("/account/username", b.form("/people/"+from, "/account/username",
		url.Values{"username": {to}, "current_password": {password}}))
}

// A new person gets an opaque id, which is the actor and aggregate id of
// what they do; the username is only in user_registered's payload.
func TestNewPersonGetsOpaqueID(t *testing.T) {
	s := startServer(t)
	alice := newBrowser(t, s.URL)
	alice.register("alice")
	loc := alice.open("Printer on fire")

	id := idOf(t, s.DB, "alice")
	if !personIDRE.MatchString(id) {
		t.Fatalf("alice's id is %q, want p_ and 20 base32 characters", id)
	}
	var agg, actor, data string
	queryOne(t, s.DB, `SELECT aggregate_id, actor, `+payloadData+` FROM events WHERE event_type = 'user_registered'`, nil, &agg, &actor, &data)
	if agg != id || actor != id || !strings.Contains(data, `"username":"alice"`) {
		t.Errorf("user_registered: aggregate %q, actor %q, data %s; want id %s both, username in the data", agg, actor, data, id)
	}
	queryOne(t, s.DB, `SELECT actor FROM events WHERE event_type = 'ticket_opened'`, nil, &actor)
	if actor != id {
		t.Errorf("ticket_opened actor %q, want %q", actor, id)
	}
	var granted string
	queryOne(t, s.DB, `SELECT user_id FROM roles`, nil, &granted)
	if granted != id {
		t.Errorf("the first person's admin role is held by %q, want %q", granted, id)
	}
	// Pages and URLs speak of the username, never the id.
	if page := alice.get(loc).body; strings.Contains(page, id) || !strings.Contains(page, `href="/people/alice"`) {
		t.Errorf("the ticket page shows the id or lacks the profile link:\n%s", page)
	}
	// A username shaped like an id is refused (nothing appended).
	n := countEvents(t, s.DB)
	bob := newBrowser(t, s.URL).from("127.0.0.2")
	a := bob.post("/register", bob.form("/register", "", url.Values{"username": {"p_abcdefghijklmnopqrst"},
		"password": {"correct horse"}, "password_confirmation": {"correct horse"}}))
	wantStatus(t, "register with an id-shaped username", a, http.StatusUnprocessableEntity)
	if got := countEvents(t, s.DB); got != n {
		t.Errorf("a refused registration appended %d events", got-n)
	}
	// Usernames are looked up without regard to case.
	wantStatus(t, "sign in as ALICE", newBrowser(t, s.URL).signIn(" ALICE ", "correct horse"), http.StatusSeeOther)
}

// Renaming: the new name signs in, the old one does not and stays
// reserved; pages name the person by the new name; assigning, the list's
// filter and @mentions take the new name.
func TestRenameUsername(t *testing.T) {
	s := startServer(t)
	alice := newBrowser(t, s.URL)
	alice.register("alice")
	bob := newBrowser(t, s.URL).from("127.0.0.2")
	bob.register("bob")
	loc := alice.open("Printer on fire")
	bob.comment(loc, "on it")
	bobID := idOf(t, s.DB, "bob")

	// A wrong password changes nothing.
	n := countEvents(t, s.DB)
	wantStatus(t, "rename with a wrong password", bob.rename("bob", "robert", "wrong password"), http.StatusUnprocessableEntity)
	// Someone else's username is refused.
	wantStatus(t, "rename to alice", bob.rename("bob", "alice", "correct horse"), http.StatusUnprocessableEntity)
	if got := countEvents(t, s.DB); got != n {
		t.Fatalf("refused renames appended %d events", got-n)
	}
	a := bob.rename("bob", "robert", "correct horse")
	wantStatus(t, "rename", a, http.StatusSeeOther)
	if a.location != "/people/robert" {
		t.Errorf("after the rename: redirect to %q, want /people/robert", a.location)
	}
	evs := eventsAfter(t, s.DB, n)
	if typesOf(evs) != "username_changed" || evs[0].Actor != bobID || evs[0].Data["from"] != "bob" || evs[0].Data["to"] != "robert" {
		t.Fatalf("the rename appended %+v", evs)
	}

	wantStatus(t, "sign in as bob", newBrowser(t, s.URL).signIn("bob", "correct horse"), http.StatusUnprocessableEntity)
	wantStatus(t, "sign in as robert", newBrowser(t, s.URL).signIn("robert", "correct horse"), http.StatusSeeOther)
	wantStatus(t, "old profile", alice.get("/people/bob"), http.StatusNotFound)
	wantStatus(t, "new profile", alice.get("/people/robert"), http.StatusOK)
	// The old comment shows the person as they are named now.
	robert := `<a href="/people/robert">Bob</a> <small class="username">@robert</small>`
	if page := alice.get(loc).body; !strings.Contains(page, robert) {
		t.Errorf("the ticket page does not show %q:\n%s", robert, page)
	}

	// The old username is reserved: nobody may register it.
	carol := newBrowser(t, s.URL).from("127.0.0.3")
	a = carol.post("/register", carol.form("/register", "", url.Values{"username": {"bob"},
		"password": {"correct horse"}, "password_confirmation": {"correct horse"}}))
	wantStatus(t, "register as bob", a, http.StatusUnprocessableEntity)

	// Assign by the new username; the old one is nobody.
	wantStatus(t, "assign bob", alice.post(loc+"/assign", alice.form(loc, loc+"/assign", url.Values{"assignee": {"bob"}})), http.StatusUnprocessableEntity)
	wantStatus(t, "assign robert", alice.post(loc+"/assign", alice.form(loc, loc+"/assign", url.Values{"assignee": {"Robert"}})), http.StatusSeeOther)
	var assignee string
	queryOne(t, s.DB, `SELECT assignee FROM tickets WHERE id = 1`, nil, &assignee)
	if assignee != bobID {
		t.Errorf("the ticket's assignee is %q, want the id %q", assignee, bobID)
	}
	var l struct {
		Tickets []struct {
			Assignee         string `json:"assignee"`
			AssigneeUsername string `json:"assignee_username"`
		} `json:"tickets"`
	}
	a = alice.do("GET", "/tickets?assignee=robert", nil, "Accept", "application/json")
	if err := json.Unmarshal([]byte(a.body), &l); err != nil || len(l.Tickets) != 1 || l.Tickets[0].Assignee != bobID || l.Tickets[0].AssigneeUsername != "robert" {
		t.Errorf("?assignee=robert: %v %s", err, a.body)
	}
	if err := json.Unmarshal([]byte(alice.do("GET", "/tickets?assignee=bob", nil, "Accept", "application/json").body), &l); err != nil || len(l.Tickets) != 0 {
		t.Errorf("?assignee=bob (a former name) lists %d tickets (%v)", len(l.Tickets), err)
	}

	// @robert reaches bob; @bob no longer does.
	mentions := func() int {
		var n int
		queryOne(t, s.DB, `SELECT COUNT(*) FROM notifications WHERE user_id = ? AND mentioned = 1`, []any{bobID}, &n)
		return n
	}
	alice.comment(loc, "@bob, look")
	if got := mentions(); got != 0 {
		t.Errorf("@bob (a former name) mentioned bob's id %d times", got)
	}
	before := len(bob.inbox().Notifications)
	alice.comment(loc, "@robert, look")
	if got := mentions(); got != 1 || len(bob.inbox().Notifications) != before+1 {
		t.Errorf("after @robert: %d mentions of bob's id, inbox %d then %d", got, before, len(bob.inbox().Notifications))
	}

	// Bob may take his old name back; then robert is reserved for him.
	wantStatus(t, "rename back", bob.rename("robert", "bob", "correct horse"), http.StatusSeeOther)
	wantStatus(t, "sign in as bob again", newBrowser(t, s.URL).signIn("bob", "correct horse"), http.StatusSeeOther)
	verifyDB(t, s.DB)
}

// A database made by the code before person ids (commit 3ec6999: ids are
// usernames) keeps working: the people sign in, pages name them, the
// operator renames one, and replay rebuilds the same people.
func TestOldStyleDatabase(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "oldstyle-3ec6999.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "braid.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "--db", path)
	alice := newBrowser(t, s.URL)
	wantStatus(t, "alice signs in", alice.signIn("alice", "correct horse"), http.StatusSeeOther)
	if page := alice.get("/tickets/1").body; !strings.Contains(page, `<a href="/people/bob">Bob</a> <small class="username">@bob</small>`) {
		t.Errorf("the old ticket does not name bob:\n%s", page)
	}
	if id := idOf(t, path, "bob"); id != "bob" {
		t.Errorf("bob's id is %q; a person registered before keeps their username as id", id)
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("server exit %d", code)
	}

	code, out, errOut := runWeb(t, "admin", "rename", "--db", path, "bob", "robert")
	if code != 0 || !strings.Contains(out, "bob is now robert") {
		t.Fatalf("web admin rename: exit %d, %q %s", code, out, errOut)
	}
	if code, _, errOut := runWeb(t, "admin", "rename", "--db", path, "bob", "bobby"); code == 0 {
		t.Errorf("renaming a former username succeeded (%s)", errOut)
	}
	if code, _, _ := runWeb(t, "admin", "rename", "--db", path, "alice", "robert"); code == 0 {
		t.Errorf("renaming alice to robert (taken) succeeded")
	}
	if code, out, _ := runWeb(t, "admin", "list", "--db", path); code != 0 || !strings.Contains(out, "robert") || !strings.Contains(out, "bob\n") {
		t.Errorf("web admin list after the rename: exit %d\n%s", code, out)
	}
	if code, out, errOut := runWeb(t, "admin", "reset-password", "--db", path, "robert"); code != 0 || !strings.Contains(out, "/reset/") {
		t.Errorf("reset-password robert: exit %d %q %s", code, out, errOut)
	}
	if code, _, _ := runWeb(t, "admin", "reset-password", "--db", path, "bob"); code == 0 {
		t.Errorf("reset-password for the former username bob succeeded")
	}
	if code, out, errOut := runWeb(t, "admin", "create-admin", "--db", path, "robert"); code != 0 {
		t.Errorf("create-admin robert: exit %d %q %s", code, out, errOut)
	}
	var holder string
	queryOne(t, path, `SELECT user_id FROM roles WHERE user_id <> 'alice'`, nil, &holder)
	if holder != "bob" {
		t.Errorf("create-admin robert granted the role to %q, want the id bob", holder)
	}

	s = startServer(t, "--db", path)
	robert := newBrowser(t, s.URL).from("127.0.0.2")
	wantStatus(t, "sign in as bob", robert.signIn("bob", "correct horse"), http.StatusUnprocessableEntity)
	wantStatus(t, "sign in as robert", robert.signIn("robert", "correct horse"), http.StatusSeeOther)
	alice = newBrowser(t, s.URL)
	alice.signIn("alice", "correct horse")
	if page := alice.get("/tickets/1").body; !strings.Contains(page, `<a href="/people/robert">Bob</a> <small class="username">@robert</small>`) {
		t.Errorf("after the rename the old ticket does not name robert:\n%s", page)
	}
	wantStatus(t, "unassign", alice.post("/tickets/1/assign", alice.form("/tickets/1", "/tickets/1/assign", url.Values{"assignee": {""}})), http.StatusSeeOther)
	wantStatus(t, "assign robert", alice.post("/tickets/1/assign", alice.form("/tickets/1", "/tickets/1/assign", url.Values{"assignee": {"robert"}})), http.StatusSeeOther)
	n := countEvents(t, path)
	robert.comment("/tickets/1", "@alice done")
	evs := eventsAfter(t, path, n)
	if len(evs) != 1 || evs[0].Actor != "bob" {
		t.Errorf("robert's comment: %+v, want actor bob (his id)", evs)
	}
	// He may rename himself too, on an old-style account.
	wantStatus(t, "robert renames himself", robert.rename("robert", "rob", "correct horse"), http.StatusSeeOther)
	if code := s.stop(); code != 0 {
		t.Fatalf("server exit %d", code)
	}

	// Replay rebuilds users (with usernames and renames) row for row.
	dump := func(path string) string {
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var b strings.Builder
		for _, q := range []string{`SELECT rowid, id, username, display_name, registered_at FROM users ORDER BY rowid`,
			`SELECT username, user_id, changed_at FROM former_usernames ORDER BY username`,
			`SELECT user_id, username FROM notify_people ORDER BY user_id`} {
			rows, err := db.Query(q)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var a, b2, c, d, e sql.NullString
				dest := []any{&a, &b2, &c, &d, &e}
				cols, _ := rows.Columns()
				if err := rows.Scan(dest[:len(cols)]...); err != nil {
					t.Fatal(err)
				}
				b.WriteString(a.String + "|" + b2.String + "|" + c.String + "|" + d.String + "|" + e.String + "\n")
			}
			rows.Close()
			b.WriteString("--\n")
		}
		return b.String()
	}
	before := dump(path)
	if !strings.Contains(before, "|bob|rob|") || !strings.Contains(before, "robert|bob|") {
		t.Fatalf("the projections do not hold the renames:\n%s", before)
	}
	if code, out, errOut := runWeb(t, "replay", "--db", path); code != 0 {
		t.Fatalf("web replay: exit %d %q %s", code, out, errOut)
	}
	if after := dump(path); after != before {
		t.Errorf("replay changed the people:\ngot:\n%s\nwant:\n%s", after, before)
	}
	verifyDB(t, path)

	// The export still verifies in Python, and imports to the same people.
	dir := t.TempDir()
	file := filepath.Join(dir, "braid.jsonl")
	if code, _, errOut := runWeb(t, "export", "--db", path, "-o", file); code != 0 {
		t.Fatalf("export: exit %d %s", code, errOut)
	}
	if code, out := python(t, file); code != 0 || !strings.HasPrefix(out, "intact") {
		t.Errorf("verify-export.py: exit %d %q", code, firstLine(out))
	}
	restored := filepath.Join(dir, "restored.db")
	if code, _, errOut := runWeb(t, "import", file, "--db", restored); code != 0 {
		t.Fatalf("import: exit %d %s", code, errOut)
	}
	if got := dump(restored); got != before {
		t.Errorf("the imported database holds other people:\ngot:\n%s\nwant:\n%s", got, before)
	}
}
