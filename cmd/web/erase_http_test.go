package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"braid/internal/anchor/anchortest"
)

// `web erase` on a stopped site: help, refusals (exit 2, one line on
// stderr, nothing appended), a v1 log refused with a pointer to
// migrate-v2, and an erasure that says what it erased.
func TestEraseCLI(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada") // the first person: site admin
	bob := newBrowser(t, s.URL).from("127.0.0.2")
	bob.register("bob")
	ticket := ada.open("Lift stuck zqxclititle")
	bob.comment(ticket, "my phone is zqxcliphone")
	if code := s.stop(); code != 0 {
		t.Fatalf("server exit %d", code)
	}
	if code, out, _ := runWeb(t, "erase", "--help"); code != 0 {
		t.Fatalf("web erase --help: exit %d\n%s", code, out)
	}
	n := countEvents(t, s.DB)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no scope", []string{"--reason", "x"}, "name exactly one of --comment, --ticket or --person"},
		{"two scopes", []string{"--ticket", "1", "--comment", "1/1", "--reason", "x"}, "name exactly one"},
		{"bad comment", []string{"--comment", "one", "--reason", "x"}, "TICKET/COMMENT"},
		{"no reason", []string{"--comment", "1/1"}, "reason: Say why"},
		{"long reason", []string{"--comment", "1/1", "--reason", strings.Repeat("x", 201)}, "reason"},
		{"with comments on a comment", []string{"--comment", "1/1", "--with-comments", "--reason", "x"}, "with_comments"},
		{"no such ticket", []string{"--ticket", "99", "--reason", "x"}, "There is no ticket 99."},
		{"no such person", []string{"--person", "nobody", "--reason", "x"}, "There is nobody called"},
		{"not an admin", []string{"--ticket", "1", "--reason", "x", "--as", "bob"}, "Only a site admin may erase this"},
	} {
		code, out, errb := runWeb(t, append([]string{"erase", "--db", s.DB}, c.args...)...)
		if code != 2 || strings.Count(errb, "\n") != 1 || !strings.Contains(errb, c.want) || out != "" {
			t.Errorf("%s: exit %d, stderr %q, stdout %q; want 2 and one line naming %q", c.name, code, errb, out, c.want)
		}
		if got := countEvents(t, s.DB); got != n {
			t.Fatalf("%s: appended %d events", c.name, got-n)
		}
	}
	code, out, errb := runWeb(t, "erase", "--db", s.DB, "--comment", "1/1", "--reason", "a phone number", "--as", "ada")
	if code != 0 || !strings.Contains(out, "erased comment 1/1: 1 payloads (1 comment_added), by ada as admin") {
		t.Fatalf("web erase --comment: exit %d\n%s%s", code, out, errb)
	}
	if countEvents(t, s.DB) != n+1 {
		t.Fatal("the erasure did not append one event")
	}
	if code, out, errb := runWeb(t, "verify", "--db", s.DB); code != 0 || !strings.Contains(out, "1 payloads erased") {
		t.Fatalf("web verify after the erasure: exit %d\n%s%s", code, out, errb)
	}
	b, _ := os.ReadFile(s.DB)
	if strings.Contains(string(b), "zqxcliphone") || !strings.Contains(string(b), "zqxclititle") {
		t.Fatal("after erasing the comment, its text is in the file, or the ticket's is not")
	}

	// A v1 log (made before braid v2): refused, pointing to migrate-v2.
	src, err := os.ReadFile(filepath.Join("testdata", "oldstyle-3ec6999.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(t.TempDir(), "old.db")
	if err := os.WriteFile(old, src, 0o600); err != nil {
		t.Fatal(err)
	}
	n = countEvents(t, old)
	code, _, errb = runWeb(t, "erase", "--db", old, "--ticket", "1", "--reason", "x")
	if code != 2 || !strings.Contains(errb, "migrate-v2") || strings.Count(errb, "\n") != 1 {
		t.Fatalf("erasing a v1 ticket: exit %d, stderr %q; want 2 naming migrate-v2", code, errb)
	}
	if countEvents(t, old) != n {
		t.Fatal("the refused v1 erasure appended")
	}
}

// Who may erase, over HTTP: a site admin anything (through /admin/erase,
// after a confirmation step, or as JSON with a token's admin scope); an
// author their own comment only; everyone else 403 with nothing appended.
// Pages then show the erasure where the text was.
func TestErasePermissions(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	bob := newBrowser(t, s.URL).from("127.0.0.2")
	bob.register("bob")
	cat := newBrowser(t, s.URL).from("127.0.0.3")
	cat.register("cat")
	ticket := ada.open("Printer zqxpermtitle")
	bob.comment(ticket, "bob's words zqxbob1")
	cat.comment(ticket, "cat's words zqxcat1")
	bob.comment(ticket, "bob again zqxbob2")

	refused := func(name string, b *browser, path string, v url.Values) {
		t.Helper()
		n := countEvents(t, s.DB)
		a := b.post(path, v)
		if a.status != http.StatusForbidden || countEvents(t, s.DB) != n {
			t.Errorf("%s: got %d appending %d, want 403 appending nothing\n%.400s", name, a.status, countEvents(t, s.DB)-n, a.body)
		}
	}
	// The admin page and its command are the admins'.
	if a := bob.get("/admin/erase"); a.status != http.StatusForbidden {
		t.Errorf("bob GET /admin/erase: %d, want 403", a.status)
	}
	csrf := bob.form(ticket, ticket+"/comments", nil).Get("_csrf")
	refused("bob erases a ticket", bob, "/admin/erase", url.Values{"_csrf": {csrf}, "scope": {"ticket"}, "target": {"1"}, "reason": {"x"}, "confirm": {"yes"}})
	// An author erases their own comment only: not cat's.
	if a := bob.get(ticket + "/comments/2/erase"); a.status != http.StatusForbidden {
		t.Errorf("bob GET cat's comment's erase page: %d, want 403", a.status)
	}
	refused("bob erases cat's comment", bob, ticket+"/comments/2/erase", url.Values{"_csrf": {csrf}})
	// Bob's own: the page asks, the post erases.
	n := countEvents(t, s.DB)
	if a := bob.post(ticket+"/comments/1/erase", bob.form(ticket+"/comments/1/erase", ticket+"/comments/1/erase", nil)); a.status != http.StatusSeeOther {
		t.Fatalf("bob erases his comment: %d\n%.600s", a.status, a.body)
	}
	if countEvents(t, s.DB) != n+1 {
		t.Fatal("bob's erasure did not append one event")
	}
	page := ada.get(ticket).body
	if strings.Contains(page, "zqxbob1") || !strings.Contains(page, "Erased on") || !strings.Contains(page, "by its author") || !strings.Contains(page, "zqxbob2") {
		t.Errorf("the ticket page after bob's erasure:\n%s", page)
	}
	// The admin: form, confirmation step (nothing appended), then the erasure.
	n = countEvents(t, s.DB)
	step := ada.post("/admin/erase", ada.form("/admin/erase", "/admin/erase", url.Values{"scope": {"person"}, "target": {"cat"}, "with_comments": {""}, "reason": {"asked to be forgotten"}}))
	if step.status != http.StatusOK || !strings.Contains(step.body, "Erase permanently") || !strings.Contains(step.body, "comment_added") || countEvents(t, s.DB) != n {
		t.Fatalf("the confirmation step: %d, appended %d\n%.1500s", step.status, countEvents(t, s.DB)-n, step.body)
	}
	bad := ada.post("/admin/erase", ada.form("/admin/erase", "/admin/erase", url.Values{"scope": {"person"}, "target": {"cat"}, "with_comments": {""}, "reason": {""}}))
	if bad.status != http.StatusUnprocessableEntity || !strings.Contains(bad.body, "Say why") || countEvents(t, s.DB) != n {
		t.Errorf("no reason: %d, want 422 naming the field", bad.status)
	}
	done := ada.post("/admin/erase", ada.form("/admin/erase", "/admin/erase", url.Values{"scope": {"person"}, "target": {"cat"}, "with_comments": {""}, "reason": {"asked to be forgotten"}, "confirm": {"yes"}}))
	if done.status != http.StatusSeeOther || countEvents(t, s.DB) != n+1 {
		t.Fatalf("the admin's erasure: %d, appended %d\n%.600s", done.status, countEvents(t, s.DB)-n, done.body)
	}
	page = ada.get(ticket).body
	if strings.Contains(page, "zqxcat1") || !strings.Contains(page, "Erased person") || !strings.Contains(page, "by an admin") {
		t.Errorf("the ticket page after erasing cat:\n%s", page)
	}
	// JSON: the ticket carries "erased" on each erased comment.
	a := ada.do("GET", ticket, nil, "Accept", "application/json")
	var got struct {
		Ticket struct {
			Comments []struct {
				ID     int64 `json:"id"`
				Erased *struct {
					At     string `json:"at"`
					ByRole string `json:"by_role"`
				} `json:"erased"`
			} `json:"comments"`
		} `json:"ticket"`
	}
	tk := &got.Ticket
	if err := json.Unmarshal([]byte(a.body), &got); err != nil || len(tk.Comments) != 3 || tk.Comments[0].Erased == nil || tk.Comments[0].Erased.ByRole != "author" || tk.Comments[1].Erased.ByRole != "admin" || tk.Comments[2].Erased != nil {
		t.Fatalf("GET %s as JSON: %v\n%s", ticket, err, a.body)
	}
	if h := ada.get(ticket + "/history").body; !strings.Contains(h, "(payload erased)") || strings.Contains(h, "zqxbob1") {
		t.Errorf("the ticket's history after the erasures:\n%.3000s", h)
	}
	if e := ada.get("/events/6").body; !strings.Contains(e, "payload erased (by the erased event at position") || strings.Contains(e, "zqxbob1") {
		t.Errorf("the event page of bob's erased comment:\n%.3000s", e)
	}
	if r := verifyDB(t, s.DB); r.Failure != nil || r.Erased < 2 {
		t.Fatalf("verify: %+v, %d erased", r.Failure, r.Erased)
	}
}

// A script with an admin token erases through JSON: the preview first
// (nothing appended), then the erasure; a write-only token is refused.
func TestEraseJSONWithToken(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	ticket := ada.open("Secret zqxjsontitle")
	admin := script{t, s.URL, makeToken(t, ada, "ada", "eraser", "read", "admin")}
	writer := script{t, s.URL, makeToken(t, ada, "ada", "ci", "read", "write")}
	id := strings.TrimPrefix(ticket, "/tickets/")
	n := countEvents(t, s.DB)
	if r := writer.do("POST", "/admin/erase", `{"scope":"ticket","target":"`+id+`","reason":"secret","confirm":true}`); r.status != http.StatusForbidden || countEvents(t, s.DB) != n {
		t.Fatalf("write-scoped token: %d, want 403 appending nothing\n%s", r.status, r.raw)
	}
	r := admin.do("POST", "/admin/erase", `{"scope":"ticket","target":"`+id+`","reason":"secret"}`)
	if r.status != http.StatusOK || dig(r.json, "preview", "scope") != "ticket" || countEvents(t, s.DB) != n {
		t.Fatalf("preview: %d, appended %d\n%s", r.status, countEvents(t, s.DB)-n, r.raw)
	}
	r = admin.do("POST", "/admin/erase", `{"scope":"ticket","target":"`+id+`","reason":"secret","confirm":true}`)
	if r.status != http.StatusOK || dig(r.json, "by_role") != "admin" || countEvents(t, s.DB) != n+1 {
		t.Fatalf("erase: %d, appended %d\n%s", r.status, countEvents(t, s.DB)-n, r.raw)
	}
	r = admin.do("GET", ticket, "")
	if dig(r.json, "ticket", "erased", "by_role") != "admin" || strings.Contains(r.raw, "zqxjsontitle") {
		t.Fatalf("the ticket as JSON after erasure:\n%s", r.raw)
	}
	r = admin.do("POST", "/admin/erase", `{"scope":"ticket","target":"`+id+`","reason":""}`)
	if r.status != http.StatusUnprocessableEntity || dig(r.json, "error", "fields", "reason") == nil {
		t.Fatalf("no reason: %d\n%s", r.status, r.raw)
	}
}

// A checkpoint and a proof bundle made before an erasure still verify
// after it (the hashes cover the commitment, which stays), and so does a
// bundle made after it, with the payload erased.
func TestErasureKeepsProofs(t *testing.T) {
	s := startServer(t)
	ada := newBrowser(t, s.URL)
	ada.register("ada")
	ticket := ada.open("Lift zqxprooftitle")
	ada.comment(ticket, "call me on zqxproofphone")
	cp, _ := waitCheckpoint(t, s.URL, int64(countEvents(t, s.DB)))
	_, out, _ := runWeb(t, "key", "--db", s.DB)
	vkey := strings.TrimPrefix(strings.Split(out, "\n")[0], "vkey ")
	dir := t.TempDir()
	save := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	before := ada.get(ticket + "/proof")
	if before.status != http.StatusOK || !strings.Contains(before.body, "zqxproofphone") {
		t.Fatalf("the bundle before: %d\n%.600s", before.status, before.body)
	}
	bundleBefore, cpFile := save("before.json", before.body), save("checkpoint", cp)
	if code := s.stop(); code != 0 {
		t.Fatalf("server exit %d", code)
	}
	// An outside witness's receipt (RFC 3161, openssl ts) of the head before.
	tsa := anchortest.NewTSA(t, "Braid Test")
	if code, out, errb := runWeb(t, "anchor", "--db", s.DB, "--witness", "rfc3161", "--tsa-url", tsa.URL, "--tsa-roots", tsa.Roots); code != 0 {
		t.Fatalf("anchor before the erasure: exit %d\n%s%s", code, out, errb)
	}
	if code, out, errb := runWeb(t, "erase", "--db", s.DB, "--ticket", strings.TrimPrefix(ticket, "/tickets/"), "--with-comments", "--reason", "a phone number"); code != 0 {
		t.Fatalf("web erase: exit %d\n%s%s", code, out, errb)
	}
	if code, out, errb := runWeb(t, "verify", "--bundle", bundleBefore, "--vkey", vkey); code != 0 {
		t.Errorf("the bundle made before the erasure: exit %d\n%s%s", code, out, errb)
	}
	if code, out, errb := runWeb(t, "verify", "--db", s.DB, "--since", cpFile, "--vkey", vkey); code != 0 {
		t.Errorf("verify --since the checkpoint made before the erasure: exit %d\n%s%s", code, out, errb)
	}
	if code, out, errb := runWeb(t, "verify", "--db", s.DB); code != 0 || !strings.Contains(out, "(witness rfc3161, ") || !strings.Contains(out, "matches the log") || !strings.Contains(out, "payloads erased") {
		t.Errorf("verify: the anchor made before the erasure: exit %d\n%s%s", code, out, errb)
	}
	s2 := startServer(t, "--db", s.DB)
	ada2 := newBrowser(t, s2.URL)
	if a := ada2.post("/login", ada2.form("/login", "", url.Values{"username": {"ada"}, "password": {"correct horse"}})); a.status != http.StatusSeeOther {
		t.Fatalf("sign in again: %d", a.status)
	}
	waitCheckpoint(t, s2.URL, int64(countEvents(t, s.DB)))
	after := ada2.get(ticket + "/proof")
	if after.status != http.StatusOK || strings.Contains(after.body, "zqxproofphone") || strings.Contains(after.body, "zqxprooftitle") {
		t.Fatalf("the bundle after: %d\n%.600s", after.status, after.body)
	}
	if code, out, errb := runWeb(t, "verify", "--bundle", save("after.json", after.body), "--vkey", vkey); code != 0 {
		t.Errorf("the bundle made after the erasure: exit %d\n%s%s", code, out, errb)
	}
}
