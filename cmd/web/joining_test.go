package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"braid/internal/auth"
	"braid/internal/errs"
	"braid/internal/events"
)

// The joining tests run under the log's own registration mode: startServer
// passes --registration open unless told otherwise.
func startSite(tb testing.TB, extra ...string) *testServer {
	tb.Helper()
	return startServer(tb, append([]string{"--registration", ""}, extra...)...)
}

type logged struct {
	Type, Actor string
	Data        map[string]any
}

// eventsAfter reads the events after position from, in order.
func eventsAfter(tb testing.TB, path string, from int) []logged {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT event_type, actor, `+payloadData+` FROM events WHERE position > ? ORDER BY position`, from)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []logged
	for rows.Next() {
		var e logged
		var data string
		if err := rows.Scan(&e.Type, &e.Actor, &data); err != nil {
			tb.Fatal(err)
		}
		json.Unmarshal([]byte(data), &e.Data)
		out = append(out, e)
	}
	return out
}

func typesOf(evs []logged) string {
	s := make([]string, len(evs))
	for i, e := range evs {
		s[i] = e.Type
	}
	return strings.Join(s, " ")
}

var joinRE = regexp.MustCompile(`https?://[^"<\s]*/join/([A-Za-z0-9_-]+)`)

// invite creates an invitation on the admin page and returns its secret.
func (b *browser) invite(role string) string {
	b.tb.Helper()
	a := b.command("/admin", "/admin/invitations", url.Values{"role": {role}, "expires_in": {"24"}, "note": {"for a friend"}})
	if a.status != http.StatusCreated {
		b.tb.Fatalf("create invitation: got %d, want 201\n%.800s", a.status, a.body)
	}
	m := joinRE.FindStringSubmatch(a.body)
	if m == nil {
		b.tb.Fatalf("no /join/ link on the page:\n%.2000s", a.body)
	}
	return m[1]
}

// join registers user through the invitation token.
func (b *browser) join(token, user string) answer {
	b.tb.Helper()
	return b.post("/join/"+token, b.form("/join/"+token, "/join/"+token, url.Values{"username": {user}, "display_name": {strings.ToUpper(user[:1]) + user[1:]},
		"password": {"correct horse"}, "password_confirmation": {"correct horse"}}))
}

func TestFirstPersonIsAdminThenRegistrationIsByInvitation(t *testing.T) {
	s := startSite(t)
	ada := newBrowser(t, s.URL)
	if a := ada.get("/register"); a.status != 200 || !strings.Contains(a.body, `action="/register"`) {
		t.Fatalf("GET /register on an empty site: got %d, want the form\n%.600s", a.status, a.body)
	}
	ada.register("ada")
	if a := ada.get("/tickets"); !strings.Contains(a.body, "You are the site&#39;s first person, so you are its admin.") {
		t.Fatalf("the welcome does not say ada is admin:\n%.2000s", a.body)
	}
	evs := eventsAfter(t, s.DB, 0)
	if typesOf(evs) != "user_registered role_granted" || evs[1].Data["person"] != idOf(t, s.DB, "ada") || evs[1].Data["role"] != "admin" || evs[1].Data["by"] != "system" {
		t.Fatalf("first registration appended %+v, want user_registered then role_granted admin to ada by system", evs)
	}

	// Now the site has a person: invite is the default.
	bob := newBrowser(t, s.URL).from("127.0.0.2")
	if a := bob.get("/register"); a.status != 200 || !strings.Contains(a.body, "by invitation") || strings.Contains(a.body, `action="/register"`) {
		t.Fatalf("GET /register: got %d, want 200 saying registration is by invitation, no form\n%.800s", a.status, a.body)
	}
	v := bob.form("/login", "", url.Values{"username": {"bob"}, "password": {"correct horse"}, "password_confirmation": {"correct horse"}})
	if a := bob.post("/register", v); a.status != 403 || !strings.Contains(a.body, "by invitation") {
		t.Fatalf("POST /register: got %d, want 403 with a message\n%.800s", a.status, a.body)
	}
	if n := countEvents(t, s.DB); n != 2 {
		t.Fatalf("the refused registration appended: %d events, want 2", n)
	}
	if a := ada.get("/admin"); a.status != 200 || !strings.Contains(a.body, "Registration is <strong>invite</strong>") || !strings.Contains(a.body, `<span class="badge">admin</span>`) {
		t.Fatalf("GET /admin: got %d\n%.3000s", a.status, a.body)
	}

	// The admin opens the doors: an event with ada as its actor; bob registers.
	if a := ada.command("/admin", "/admin/registration", url.Values{"mode": {"open"}}); a.status != 303 {
		t.Fatalf("set registration open: got %d\n%.800s", a.status, a.body)
	}
	if evs := eventsAfter(t, s.DB, 2); typesOf(evs) != "registration_mode_set" || evs[0].Actor != idOf(t, s.DB, "ada") || evs[0].Data["mode"] != "open" {
		t.Fatalf("set registration appended %+v", evs)
	}
	bob.register("bob")
	if evs := eventsAfter(t, s.DB, 3); typesOf(evs) != "user_registered" {
		t.Fatalf("bob's registration appended %q, want user_registered alone (he is not first)", typesOf(evs))
	}
}

// Two people register at once on an empty site: exactly one is admin and,
// the site being invite by default, the other is refused.
func TestOnlyOneFirstPerson(t *testing.T) {
	s := startSite(t)
	var wg sync.WaitGroup
	status := make([]int, 4)
	// Every form is drawn before anyone posts: a form drawn after the
	// first person registered is the "by invitation" page, not a form.
	bs, forms := make([]*browser, len(status)), make([]url.Values, len(status))
	for i := range status {
		bs[i] = newBrowser(t, s.URL).from("127.0.0." + string(rune('1'+i)))
		forms[i] = bs[i].form("/register", "", url.Values{"username": {"p" + string(rune('a'+i)) + "x"}, "password": {"correct horse"}, "password_confirmation": {"correct horse"}})
	}
	for i := range status {
		wg.Add(1)
		go func() { defer wg.Done(); status[i] = bs[i].post("/register", forms[i]).status }()
	}
	wg.Wait()
	ok := 0
	for _, st := range status {
		if st == 303 {
			ok++
		} else if st != 403 {
			t.Fatalf("statuses %v: want one 303 and the rest 403", status)
		}
	}
	if evs := eventsAfter(t, s.DB, 0); ok != 1 || typesOf(evs) != "user_registered role_granted" {
		t.Fatalf("statuses %v, log %q: want exactly one first person", status, typesOf(evs))
	}
}

func TestInvitationWorksOnceAndItsSecretStaysOutOfTheLog(t *testing.T) {
	s := startSite(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	token := ada.invite("member")
	if len(token) < 43 { // 256 bits in unpadded base64url
		t.Fatalf("token %q: want at least 128 bits", token)
	}
	evs := eventsAfter(t, s.DB, 2)
	if typesOf(evs) != "invitation_created" || evs[0].Actor != idOf(t, s.DB, "ada") || evs[0].Data["role"] != "member" || evs[0].Data["expires_at"] == nil {
		t.Fatalf("creating the invitation appended %+v", evs)
	}
	id, _ := evs[0].Data["invitation"].(string)
	if id == "" || strings.Contains(token, id) {
		t.Fatalf("invitation id %q: want one, not part of the secret", id)
	}
	// Shown once: the admin page drawn again has the id, not the link.
	if a := ada.get("/admin"); !strings.Contains(a.body, id) || strings.Contains(a.body, token) {
		t.Fatalf("the admin page after creation: id shown %v, secret shown %v", strings.Contains(a.body, id), strings.Contains(a.body, token))
	}

	bob := newBrowser(t, s.URL).from("127.0.0.2")
	if a := bob.get("/join/" + token); a.status != 200 || !strings.Contains(a.body, `action="/join/`+token+`"`) {
		t.Fatalf("GET /join: got %d\n%.800s", a.status, a.body)
	}
	if a := bob.join(token, "bob"); a.status != 303 {
		t.Fatalf("POST /join: got %d\n%.800s", a.status, a.body)
	}
	evs = eventsAfter(t, s.DB, 3)
	if typesOf(evs) != "user_registered invitation_used" || evs[1].Data["person"] != idOf(t, s.DB, "bob") || evs[1].Data["invitation"] != id {
		t.Fatalf("joining appended %+v, want user_registered and invitation_used", evs)
	}
	if a := bob.get("/admin"); a.status != 403 {
		t.Fatalf("a member on /admin: got %d, want 403", a.status)
	}

	// Used: 404 for anyone, nothing appended.
	cyd := newBrowser(t, s.URL).from("127.0.0.3")
	if a := cyd.get("/join/" + token); a.status != 404 || !strings.Contains(a.body, "not valid") {
		t.Fatalf("GET a used link: got %d, want 404 with a message", a.status)
	}
	v := cyd.form("/login", "", url.Values{"username": {"cyd"}, "password": {"correct horse"}, "password_confirmation": {"correct horse"}})
	for _, path := range []string{"/join/" + token, "/join/" + strings.Repeat("A", 43), "/join/x"} {
		before := countEvents(t, s.DB)
		if a := cyd.post(path, v); a.status != 404 {
			t.Fatalf("POST %s: got %d, want 404", path, a.status)
		}
		if n := countEvents(t, s.DB) - before; n != 0 {
			t.Fatalf("POST %s appended %d", path, n)
		}
	}

	// An admin invitation makes an admin; a revoked one works no more.
	admin := ada.invite("admin")
	revoked := ada.invite("member")
	evs = eventsAfter(t, s.DB, 0)
	rid, _ := evs[len(evs)-1].Data["invitation"].(string)
	if a := ada.command("/admin", "/admin/invitations/"+rid+"/revoke", nil); a.status != 303 {
		t.Fatalf("revoke: got %d\n%.600s", a.status, a.body)
	}
	if e := eventsAfter(t, s.DB, len(evs)); typesOf(e) != "invitation_revoked" || e[0].Actor != idOf(t, s.DB, "ada") {
		t.Fatalf("revoking appended %+v", e)
	}
	if a := cyd.get("/join/" + revoked); a.status != 404 {
		t.Fatalf("a revoked link: got %d, want 404", a.status)
	}
	n := countEvents(t, s.DB)
	if a := cyd.join(admin, "cyd"); a.status != 303 {
		t.Fatalf("join as admin: got %d", a.status)
	}
	if e := eventsAfter(t, s.DB, n); typesOf(e) != "user_registered role_granted invitation_used" || e[1].Data["by"] != idOf(t, s.DB, "ada") {
		t.Fatalf("joining as admin appended %+v", e)
	}
	if a := cyd.get("/admin"); a.status != 200 {
		t.Fatalf("the invited admin on /admin: got %d", a.status)
	}

	// The secrets are nowhere: not in the database files (log, projections,
	// sessions), not in an export, not in the server's log lines.
	s.stop()
	for _, tok := range []string{token, admin, revoked} {
		files, _ := filepath.Glob(s.DB + "*")
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if bytes.Contains(b, []byte(tok)) {
				t.Fatalf("%s holds an invitation secret", filepath.Base(f))
			}
		}
		code, out, _ := runWeb(t, "export", "--db", s.DB)
		if code != 0 || strings.Contains(out, tok) || !strings.Contains(out, "invitation_created") {
			t.Fatalf("export: exit %d, holds the secret %v", code, strings.Contains(out, tok))
		}
		if strings.Contains(s.Log.String(), tok) {
			t.Fatalf("the server's log holds a secret")
		}
	}
	if !strings.Contains(s.Log.String(), "/join/…") {
		t.Fatalf("the request log does not show /join/…:\n%.2000s", s.Log.String())
	}
}

// An invitation expires: the writer's clock decides, inside the command.
func TestInvitationExpires(t *testing.T) {
	ctx := context.Background()
	db, err := openDB(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg, ty := registry()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	w, err := events.NewWriter(ctx, db, reg, events.WriterOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	svc := &auth.Service{DB: db, Writer: w, Types: ty.users, Cost: bcrypt.MinCost, Now: clock}
	ids := map[string]string{}
	reg1 := func(u, token string) error {
		id, _, err := svc.SignUp(ctx, auth.Registration{Username: u, Password: "correct horse", Confirmation: "correct horse", Invitation: token}, "")
		ids[u] = id
		return err
	}
	if err := reg1("ada", ""); err != nil {
		t.Fatal(err)
	}
	a, err := svc.CreateInvitation(ctx, ids["ada"], auth.Invite{Role: "member", ExpiresIn: 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.CreateInvitation(ctx, ids["ada"], auth.Invite{Role: "member", ExpiresIn: 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(59 * time.Minute)
	mu.Unlock()
	if err := reg1("bob", a.Token); err != nil {
		t.Fatalf("within the hour: %v", err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	before := w.Head().Position
	if err := reg1("cyd", b.Token); errs.Code(err) != errs.NotFound {
		t.Fatalf("after the hour: got %v, want not_found", err)
	}
	if _, err := svc.CheckInvitation(ctx, b.Token); errs.Code(err) != errs.NotFound {
		t.Fatalf("CheckInvitation after the hour: %v", err)
	}
	if w.Head().Position != before {
		t.Fatalf("an expired invitation appended")
	}
	// Out of range or unknown roles are refused before anything is written.
	for _, in := range []auth.Invite{{Role: "member", ExpiresIn: 0}, {Role: "member", ExpiresIn: 169}, {Role: "owner", ExpiresIn: 1}} {
		if _, err := svc.CreateInvitation(ctx, ids["ada"], in, ""); errs.Code(err) != errs.Invalid {
			t.Fatalf("%+v: got %v, want invalid", in, err)
		}
	}
	if _, err := svc.CreateInvitation(ctx, ids["bob"], auth.Invite{Role: "member", ExpiresIn: 1}, ""); errs.Code(err) != errs.Forbidden {
		t.Fatalf("a member creating an invitation: got %v, want forbidden", err)
	}
	if w.Head().Position != before {
		t.Fatalf("refused invitations appended")
	}
}

// Every admin route, for an admin, a member and someone signed out: the
// status, and nothing appended on refusal.
func TestAdminRoutesByRole(t *testing.T) {
	s := startSite(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	bob := newBrowser(t, s.URL).from("127.0.0.2")
	if a := bob.join(ada.invite("member"), "bob"); a.status != 303 {
		t.Fatalf("bob joins: %d", a.status)
	}
	pending := ada.invite("member")
	_ = pending
	evs := eventsAfter(t, s.DB, 0)
	pid, _ := evs[len(evs)-1].Data["invitation"].(string)
	anon := newBrowser(t, s.URL)
	csrf := anon.form("/login", "", nil).Get("_csrf")

	type route struct {
		name, method, path string
		fields             url.Values
		adminStatus        int
		adminAppends       int
	}
	routes := []route{
		{"the admin page", "GET", "/admin", nil, 200, 0},
		{"create an invitation", "POST", "/admin/invitations", url.Values{"role": {"member"}, "expires_in": {"2"}}, 201, 1},
		{"revoke an invitation", "POST", "/admin/invitations/" + pid + "/revoke", nil, 303, 1},
		{"set registration", "POST", "/admin/registration", url.Values{"mode": {"closed"}}, 303, 1},
		{"grant admin", "POST", "/admin/roles", url.Values{"person": {"bob"}, "action": {"grant"}}, 303, 1},
		{"revoke admin", "POST", "/admin/roles", url.Values{"person": {"bob"}, "action": {"revoke"}}, 303, 1},
	}
	send := func(b *browser, r route, token string) answer {
		v := url.Values{"_csrf": {token}, "command_id": {events.NewID()}}
		for k, x := range r.fields {
			v[k] = x
		}
		if r.method == "GET" {
			return b.get(r.path)
		}
		return b.post(r.path, v)
	}
	for _, who := range []struct {
		name   string
		b      *browser
		token  string
		status int
	}{
		{"signed out", anon, csrf, 303},
		{"member", bob, bob.form("/tickets/new", "", nil).Get("_csrf"), 403},
		{"admin", ada, ada.form("/admin", "/admin/registration", nil).Get("_csrf"), 0},
	} {
		for _, r := range routes {
			before := countEvents(t, s.DB)
			a := send(who.b, r, who.token)
			want, appends := who.status, 0
			if want == 0 {
				want, appends = r.adminStatus, r.adminAppends
			}
			if a.status != want {
				t.Fatalf("%s, %s: got %d, want %d\n%.600s", who.name, r.name, a.status, want, a.body)
			}
			if want == 303 && who.name == "signed out" && !strings.HasPrefix(a.location, "/login") {
				t.Fatalf("%s, %s: sent to %q, want /login", who.name, r.name, a.location)
			}
			if n := countEvents(t, s.DB) - before; n != appends {
				t.Fatalf("%s, %s: appended %d, want %d", who.name, r.name, n, appends)
			}
		}
	}

	// The last admin cannot be revoked, nor revoke themself into none.
	for _, f := range []url.Values{{"person": {"ada"}, "action": {"revoke"}}, {"person": {"bob"}, "action": {"revoke"}}, {"person": {"nobody"}, "action": {"grant"}}, {"person": {"ada"}, "action": {"promote"}}} {
		before := countEvents(t, s.DB)
		a := ada.command("/admin", "/admin/roles", f)
		if a.status < 400 || a.status >= 500 {
			t.Fatalf("%v: got %d, want a 4xx", f, a.status)
		}
		if f.Get("person") == "ada" && f.Get("action") == "revoke" && (a.status != 409 || !strings.Contains(a.body, "last admin")) {
			t.Fatalf("revoking the last admin: got %d\n%.600s", a.status, a.body)
		}
		if n := countEvents(t, s.DB) - before; n != 0 {
			t.Fatalf("%v appended %d", f, n)
		}
	}
	// A revoked admin's next admin request is 403.
	if a := ada.command("/admin", "/admin/roles", url.Values{"person": {"bob"}, "action": {"grant"}}); a.status != 303 {
		t.Fatalf("grant bob: %d", a.status)
	}
	if a := bob.get("/admin"); a.status != 200 {
		t.Fatalf("bob as admin: %d", a.status)
	}
	if a := bob.command("/admin", "/admin/roles", url.Values{"person": {"ada"}, "action": {"revoke"}}); a.status != 303 {
		t.Fatalf("bob revokes ada: %d\n%.600s", a.status, a.body)
	}
	if a := ada.get("/admin"); a.status != 403 {
		t.Fatalf("ada after revocation: got %d, want 403", a.status)
	}
	if e := eventsAfter(t, s.DB, countEvents(t, s.DB)-1); typesOf(e) != "role_revoked" || e[0].Actor != idOf(t, s.DB, "bob") || e[0].Data["person"] != idOf(t, s.DB, "ada") {
		t.Fatalf("revocation event %+v", e)
	}
}

func TestAdminCommandsAppendAsSystem(t *testing.T) {
	s := startSite(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	bob := newBrowser(t, s.URL).from("127.0.0.2")
	bob.join(ada.invite("member"), "bob")

	// A second writer beside the running site would fork the braid.
	if code, _, errb := runWeb(t, "admin", "create-admin", "bob", "--db", s.DB); code != 2 || !strings.Contains(errb, "stop it first") {
		t.Fatalf("create-admin beside a running site: exit %d, %q", code, errb)
	}
	s.stop()
	n := countEvents(t, s.DB)
	code, out, errb := runWeb(t, "admin", "create-admin", "--db", s.DB, "bob")
	if code != 0 || !strings.Contains(out, "bob is now a site admin") {
		t.Fatalf("create-admin: exit %d, %q %q", code, out, errb)
	}
	if code, _, errb := runWeb(t, "admin", "create-admin", "--db", s.DB, "bob"); code != 1 || !strings.Contains(errb, "admin already") {
		t.Fatalf("create-admin twice: exit %d, %q", code, errb)
	}
	if code, _, errb := runWeb(t, "admin", "create-admin", "--db", s.DB, "nobody"); code != 1 || !strings.Contains(errb, "nobody") {
		t.Fatalf("create-admin nobody: exit %d, %q", code, errb)
	}
	if code, _, errb := runWeb(t, "admin", "set-registration", "--db", s.DB, "sometimes"); code != 1 || !strings.Contains(errb, "open, invite or closed") {
		t.Fatalf("set-registration sometimes: exit %d, %q", code, errb)
	}
	if code, out, errb := runWeb(t, "admin", "set-registration", "open", "--db", s.DB); code != 0 || !strings.Contains(out, "Registration is now open") {
		t.Fatalf("set-registration: exit %d, %q %q", code, out, errb)
	}
	evs := eventsAfter(t, s.DB, n)
	if typesOf(evs) != "role_granted registration_mode_set" || evs[0].Actor != "system" || evs[0].Data["person"] != idOf(t, s.DB, "bob") || evs[1].Actor != "system" || evs[1].Data["mode"] != "open" {
		t.Fatalf("the operator's commands appended %+v", evs)
	}
	verifyDB(t, s.DB)
	if code, out, _ := runWeb(t, "admin", "--help"); code != 0 || !strings.Contains(out, "create-admin") || !strings.Contains(out, "set-registration") {
		t.Fatalf("web admin --help: exit %d\n%s", code, out)
	}

	// The log's mode holds at the next start; --registration overrides it
	// for the process and writes nothing.
	s2 := startServer(t, "--db", s.DB, "--registration", "")
	newBrowser(t, s2.URL).from("127.0.0.3").register("cyd")
	s2.stop()
	n = countEvents(t, s.DB)
	s3 := startServer(t, "--db", s.DB, "--registration", "closed")
	dan := newBrowser(t, s3.URL).from("127.0.0.4")
	v := dan.form("/login", "", url.Values{"username": {"dan"}, "password": {"correct horse"}, "password_confirmation": {"correct horse"}})
	if a := dan.post("/register", v); a.status != 403 {
		t.Fatalf("closed by flag: got %d, want 403", a.status)
	}
	s3.stop()
	if got := countEvents(t, s.DB); got != n {
		t.Fatalf("--registration closed appended %d events", got-n)
	}
}

// serve --registration invite: the first person still registers (someone
// must invite), the next is refused; nothing about the mode is appended.
func TestRegistrationInviteByFlag(t *testing.T) {
	s := startServer(t, "--registration", "invite")
	newBrowser(t, s.URL).register("ada")
	bob := newBrowser(t, s.URL).from("127.0.0.2")
	v := bob.form("/login", "", url.Values{"username": {"bob"}, "password": {"correct horse"}, "password_confirmation": {"correct horse"}})
	if a := bob.post("/register", v); a.status != 403 || !strings.Contains(a.body, "by invitation") {
		t.Fatalf("POST /register: got %d, want 403\n%.600s", a.status, a.body)
	}
	if got := typesOf(eventsAfter(t, s.DB, 0)); got != "user_registered role_granted" {
		t.Fatalf("log %q", got)
	}
}
