package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"braid/internal/events"
	"braid/migrations"
)

// newDB makes an empty, migrated database file.
func newDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "braid.db")
	db, err := events.Open(context.Background(), path, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	return path
}

// query runs one SQL query on path and returns its rows as lines of
// tab-separated values.
func query(t *testing.T, path, q string, args ...any) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var f []string
		for _, v := range vals {
			f = append(f, v.String)
		}
		lines = append(lines, strings.Join(f, "\t"))
	}
	return strings.Join(lines, "\n")
}

const ghFixture = "../../internal/importer/testdata/github/export.json"
const giteaFixture = "../../internal/importer/testdata/gitea/export.json"

// A GitHub export becomes tickets (the pull request left out) by imported
// people, with labels, state, the first assignee and the comments in
// order; the original times and address are in the payload; a second run
// appends nothing; the braid verifies.
func TestImportIssuesGitHub(t *testing.T) {
	path := newDB(t)
	code, out, errOut := runWeb(t, "import-issues", "--db", path, "--from", "github", ghFixture)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	// 3 people, 2 tickets, 3 comments, 1 assigned, 1 closed.
	if !strings.HasPrefix(out, "10 new: 2 tickets, 3 comments, 3 people, 1 assigned, 1 closed") {
		t.Fatalf("stdout %q", out)
	}
	if !strings.Contains(errOut, "#2 is a pull request") || !strings.Contains(errOut, "comment 9002 is on #2") {
		t.Fatalf("stderr does not say what was left out: %q", errOut)
	}
	people := query(t, path, `SELECT username, display_name, imported_from FROM users ORDER BY username`)
	if people != "gh-hubot\thubot\tgithub\ngh-mona\tmona\tgithub\ngh-octocat\toctocat\tgithub" {
		t.Fatalf("people:\n%s", people)
	}
	if n := query(t, path, `SELECT COUNT(*) FROM credentials`); n != "0" {
		t.Fatalf("imported people have %s passwords", n)
	}
	// Oldest issue first: #1 is ticket 1, #3 ticket 2.
	got := query(t, path, `SELECT t.id, t.title, t.status, COALESCE(a.username, ''), au.username, t.body FROM tickets t
		JOIN users au ON au.id = t.author LEFT JOIN users a ON a.id = t.assignee ORDER BY t.id`)
	want := "1\tAdd a dark theme\topen\t\tgh-mona\t\n" +
		"2\tCrash when the name has an accent: Zoë, 東京, emoji 🚲\tclosed\tgh-hubot\tgh-octocat\tSteps:\n1. Enter **Zoë**\n2. Save\n\nIt crashes.\n\n---\n_Imported:_ also assigned there: mona."
	if got != want {
		t.Fatalf("tickets:\n%s\nwant:\n%s", got, want)
	}
	if l := query(t, path, `SELECT ticket_id, label FROM ticket_labels ORDER BY ticket_id, label`); l != "1\tenhancement\n2\tbug\n2\tgood first issue" {
		t.Fatalf("labels:\n%s", l)
	}
	if c := query(t, path, `SELECT c.ticket_id, c.id, u.username, c.body FROM comments c JOIN users u ON u.id = c.author ORDER BY c.position`); c !=
		"1\t1\tgh-octocat\tYes please 🌙\n2\t1\tgh-hubot\tI can reproduce it with «Zoë» — ça plante.\n2\t2\tgh-octocat\tFixed by #2, thanks!\nClosing." {
		t.Fatalf("comments:\n%s", c)
	}
	if p := query(t, path, `SELECT json_extract(COALESCE((SELECT p.data FROM payloads p WHERE p.position = events.position), events.data), '$.imported') FROM events WHERE event_type = 'ticket_opened' AND aggregate_id = '2'`); p !=
		`{"source":"github","url":"https://github.com/octo-org/hello-world/issues/3","number":3,"login":"octocat","created_at":"2024-03-03T09:15:00Z","closed_at":"2024-03-05T10:59:58Z"}` {
		t.Fatalf("ticket_opened's imported: %s", p)
	}
	if p := query(t, path, `SELECT json_extract(COALESCE((SELECT p.data FROM payloads p WHERE p.position = events.position), events.data), '$.imported.created_at') FROM events WHERE event_type = 'comment_added' ORDER BY position LIMIT 1`); p != "2024-02-02T12:00:00Z" {
		t.Fatalf("comment's original time: %s", p)
	}
	if p := query(t, path, `SELECT COALESCE((SELECT p.data FROM payloads p WHERE p.position = events.position), events.data) FROM events WHERE event_type = 'person_imported' ORDER BY position LIMIT 1`); !strings.Contains(p, `"source":"github"`) ||
		!strings.Contains(p, `"login":"mona"`) || !strings.Contains(p, `"source_id":"9919"`) {
		t.Fatalf("person_imported: %s", p)
	}
	n := countEvents(t, path)
	code, out, errOut = runWeb(t, "import-issues", "--db", path, "--from", "github", ghFixture)
	if code != 0 || !strings.HasPrefix(out, "0 new") || countEvents(t, path) != n {
		t.Fatalf("second run: exit %d, %q %q, %d events (were %d)", code, out, errOut, countEvents(t, path), n)
	}
	if r := verifyDB(t, path); !r.Intact || r.Events != int64(countEvents(t, path)) {
		t.Fatalf("verify: %+v", r)
	}
}

// A Gitea export: the umlauts of logins made usernames, original_author
// for an issue Gitea migrated from elsewhere, state and assignee; a bare
// issues array (no comments) also loads.
func TestImportIssuesGitea(t *testing.T) {
	path := newDB(t)
	code, out, errOut := runWeb(t, "import-issues", "--db", path, "--from", "gitea", "--project", "main", giteaFixture)
	if code != 0 || !strings.HasPrefix(out, "10 new: 2 tickets, 3 comments, 3 people, 1 assigned, 1 closed") {
		t.Fatalf("exit %d: %q %q", code, out, errOut)
	}
	got := query(t, path, `SELECT t.id, t.title, t.status, COALESCE(a.username, ''), au.username, au.display_name, (SELECT group_concat(label) FROM ticket_labels WHERE ticket_id = t.id)
		FROM tickets t JOIN users au ON au.id = t.author LEFT JOIN users a ON a.id = t.assignee ORDER BY t.id`)
	want := "1\tÜbersicht lädt langsam\tclosed\tgitea-ana\tgitea-j-rgen\tjürgen\tkind/performance\n" +
		"2\tMigrated from the old tracker\topen\t\tgitea-old-timer\told-timer\t"
	if got != want {
		t.Fatalf("tickets:\n%s\nwant:\n%s", got, want)
	}
	if c := query(t, path, `SELECT c.ticket_id, u.username, c.body FROM comments c JOIN users u ON u.id = c.author ORDER BY c.position`); c !=
		"1\tgitea-ana\tProfiling zeigt die N+1-Abfrage.\n1\tgitea-j-rgen\tDanke, jetzt 120 ms.\n2\tgitea-old-timer\tStill true." {
		t.Fatalf("comments:\n%s", c)
	}
	if p := query(t, path, `SELECT json_extract(COALESCE((SELECT p.data FROM payloads p WHERE p.position = events.position), events.data), '$.imported.created_at') FROM events WHERE event_type = 'ticket_opened' AND aggregate_id = '1'`); p != "2024-01-10T09:30:00+01:00" {
		t.Fatalf("original time: %s", p)
	}
	if code, out, _ := runWeb(t, "import-issues", "--db", path, "--from", "gitea", giteaFixture); code != 0 || !strings.HasPrefix(out, "0 new") {
		t.Fatalf("second run: %d %q", code, out)
	}
	code, out, errOut = runWeb(t, "import-issues", "--db", path, "--from", "github", "../../internal/importer/testdata/github/issues-only.json")
	if code != 0 || !strings.HasPrefix(out, "2 new: 1 tickets, 0 comments, 1 people") {
		t.Fatalf("bare array: exit %d: %q %q", code, out, errOut)
	}
	if l := query(t, path, `SELECT label FROM ticket_labels WHERE ticket_id = 3`); l != "question" {
		t.Fatalf("string label: %q", l)
	}
}

// Bad input exits 2 with one line on stderr and appends nothing.
func TestImportIssuesRefusesBadInput(t *testing.T) {
	path := newDB(t)
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, _ := os.ReadFile(ghFixture)
	cases := map[string][]string{
		"truncated":   {"--from", "github", write("t.json", string(good[:len(good)/2]))},
		"not json":    {"--from", "github", write("n.json", "hello")},
		"no issues":   {"--from", "github", write("o.json", `{"comments": []}`)},
		"bad state":   {"--from", "github", write("s.json", strings.Replace(string(good), `"state": "closed"`, `"state": "weird"`, 1))},
		"bad time":    {"--from", "github", write("d.json", strings.Replace(string(good), `"2024-03-03T09:15:00Z"`, `"yesterday"`, 1))},
		"no user":     {"--from", "github", write("u.json", `[{"number": 1, "title": "x", "state": "open", "created_at": "2024-01-01T00:00:00Z", "html_url": "https://github.com/a/b/issues/1"}]`)},
		"two repos":   {"--from", "github", write("r.json", strings.Replace(string(good), `"https://github.com/octo-org/hello-world/issues/1"`, `"https://github.com/other/repo/issues/1"`, 1))},
		"bad source":  {"--from", "jira", ghFixture},
		"no file":     {"--from", "github", filepath.Join(dir, "missing.json")},
		"bad comment": {"--from", "github", write("c.json", `{"issues": [], "comments": [{"id": 1, "issue_url": "nowhere", "user": {"login": "a", "id": 1}, "body": "x", "created_at": "2024-01-01T00:00:00Z"}]}`)},
	}
	for name, args := range cases {
		code, out, errOut := runWeb(t, append([]string{"import-issues", "--db", path}, args...)...)
		if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "web import-issues: ") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 2 and one line", name, code, out, errOut)
		}
	}
	if n := countEvents(t, path); n != 0 {
		t.Fatalf("%d events appended", n)
	}
	// A project that does not exist is refused before anything is appended.
	if code, _, errOut := runWeb(t, "import-issues", "--db", path, "--from", "github", "--project", "nope", ghFixture); code != 2 || countEvents(t, path) != 0 {
		t.Fatalf("unknown project: exit %d, %q, %d events", code, errOut, countEvents(t, path))
	}
}

// A real account claims an imported person: the ticket page then names the
// real person for the imported one's ticket and comments, and says where
// the ticket came from; a reset link is refused for an imported person;
// replay rebuilds the claim.
func TestImportIssuesClaim(t *testing.T) {
	path := newDB(t)
	if code, out, errOut := runWeb(t, "import-issues", "--db", path, "--from", "github", ghFixture); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	url, stop := startServerOn(t, path)
	b := newBrowser(t, url)
	b.register("monica")
	page := b.get("/tickets/1").body
	if !strings.Contains(page, "imported from GitHub #1, opened 1 Feb 2024 by mona") || !strings.Contains(page, "@gh-mona") {
		t.Fatalf("before the claim the page does not show the import and gh-mona:\n%.3000s", page)
	}
	stop()
	if code, _, errOut := runWeb(t, "admin", "reset-password", "--db", path, "gh-mona"); code == 0 {
		t.Fatalf("a reset link for an imported person: %q", errOut)
	}
	if code, _, errOut := runWeb(t, "admin", "claim", "--db", path, "monica", "gh-mona"); code == 0 {
		t.Fatalf("claiming the other way round: %q", errOut)
	}
	if code, out, errOut := runWeb(t, "admin", "claim", "--db", path, "gh-mona", "monica"); code != 0 || !strings.Contains(out, "gh-mona is now shown as monica") {
		t.Fatalf("claim: exit %d %q %q", code, out, errOut)
	}
	if c := query(t, path, `SELECT json_extract(COALESCE((SELECT p.data FROM payloads p WHERE p.position = events.position), events.data), '$.by') = (SELECT id FROM users WHERE username = 'monica') FROM events WHERE event_type = 'person_claimed'`); c != "1" {
		t.Fatalf("person_claimed: %q", c)
	}
	check := func(when string) {
		url, stop := startServerOn(t, path)
		defer stop()
		b := newBrowser(t, url)
		b.signIn("monica", "correct horse")
		page := b.get("/tickets/1").body
		if strings.Contains(page, "@gh-mona") || !strings.Contains(page, "@monica") {
			t.Fatalf("%s: the page still names gh-mona:\n%.3000s", when, page)
		}
	}
	check("after the claim")
	if code, out, errOut := runWeb(t, "replay", "--db", path); code != 0 {
		t.Fatalf("replay: %d %q %q", code, out, errOut)
	}
	check("after replay")
	if r := verifyDB(t, path); !r.Intact || r.Events != int64(countEvents(t, path)) {
		t.Fatalf("verify: %+v", r)
	}
}

// The admin page's claim form: a site admin claims an imported person
// (the page then names the admin for their ticket); a name that is not
// imported re-shows the form with the message beside the field and
// appends nothing; someone who is not an admin gets 403.
func TestImportIssuesClaimOnAdminPage(t *testing.T) {
	path := newDB(t)
	if code, out, errOut := runWeb(t, "import-issues", "--db", path, "--from", "github", ghFixture); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	url, _ := startServerOn(t, path)
	ada := newBrowser(t, url)
	ada.register("ada") // the first person: the site admin
	bob := newBrowser(t, url).from("127.0.0.61")
	bob.register("bob")
	n := countEvents(t, path)
	if a := ada.post("/admin/claim", ada.form("/admin", "/admin/claim", map[string][]string{"imported": {"bob"}, "by": {"ada"}})); a.status != 422 ||
		!strings.Contains(a.body, "was not imported from another tracker") || countEvents(t, path) != n {
		t.Fatalf("claiming a real person: %d, %d events (were %d)\n%.2000s", a.status, countEvents(t, path), n, a.body)
	}
	v := bob.form("/tickets/new", "/tickets", nil) // bob's own CSRF token
	v2 := map[string][]string{"_csrf": v["_csrf"], "imported": {"gh-mona"}, "by": {"bob"}}
	if a := bob.post("/admin/claim", v2); a.status != 403 || countEvents(t, path) != n || !strings.Contains(a.body, "Only a site admin may") {
		t.Fatalf("bob claims: %d", a.status)
	}
	if a := ada.post("/admin/claim", ada.form("/admin", "/admin/claim", map[string][]string{"imported": {"gh-mona"}, "by": {"ada"}})); a.status != 303 {
		t.Fatalf("claim: %d\n%.2000s", a.status, a.body)
	}
	if page := ada.get("/tickets/1").body; strings.Contains(page, "@gh-mona") || !strings.Contains(page, `href="/people/ada"`) {
		t.Fatalf("after the claim the page still names gh-mona:\n%.3000s", page)
	}
}
