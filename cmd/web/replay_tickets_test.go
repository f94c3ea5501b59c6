package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"braid/internal/access"
	"braid/internal/auth"
	"braid/internal/events"
	"braid/internal/hooks"
	"braid/internal/importer"
	"braid/internal/notify"
	"braid/internal/tickets"
	"braid/internal/tickets/tickettest"
)

// dumpProjections renders every projection table of Braid's registry, row
// by row in rowid order, as text.
func dumpProjections(tb testing.TB, db *events.DB, reg *events.Registry) map[string]string {
	tb.Helper()
	out := map[string]string{}
	for _, p := range reg.Projections() {
		for _, table := range p.Tables {
			rows, err := db.Read.Query(`SELECT rowid, * FROM ` + table + ` ORDER BY rowid`)
			if err != nil {
				tb.Fatalf("dump %s: %v", table, err)
			}
			cols, _ := rows.Columns()
			var b strings.Builder
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					tb.Fatal(err)
				}
				fmt.Fprintf(&b, "%q\n", vals)
			}
			rows.Close()
			out[table] = b.String()
		}
	}
	return out
}

// After the browser-style flows and a generated history of thousands of
// events, a replay leaves every projection table identical, row for row,
// to what the live writer built.
func TestReplayRebuildsTicketProjectionsIdentically(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "braid.db")

	// The HTTP flows first, through the real server.
	s := startServer(t, "--db", path)
	ada, bob := newBrowser(t, s.URL), newBrowser(t, s.URL)
	ada.register("ada")
	bob.register("bob")
	ticket := ada.open("Replay me <script>")
	bob.post(ticket+"/comments", bob.form(ticket, ticket+"/comments", map[string][]string{"body": {"a comment"}}))
	ada.post(ticket+"/close", ada.form(ticket, ticket+"/close", nil))
	// Attachments: under a comment, and on the ticket itself (attach.go).
	if a := ada.attachTo(ticket, "the screenshot", upfile{"files", "shot.png", pngBytes(t, 4, 4)}); a.status != 303 {
		t.Fatalf("attach: %d\n%.400s", a.status, a.body)
	}
	if a := ada.upload(ticket+"/attachments", ada.form(ticket, ticket+"/comments", nil), []upfile{{"files", "log.txt", []byte("boom\n")}}); a.status != 303 {
		t.Fatalf("attach to the ticket: %d\n%.400s", a.status, a.body)
	}
	// Notify: a mention, a watch by hand and back, read state, an address.
	cyd := newBrowser(t, s.URL).from("127.0.0.50")
	cyd.register("cyd")
	bob.comment(ticket, "@cyd have a look")
	cyd.command(ticket, ticket+"/unwatch", nil)
	cyd.command(ticket, ticket+"/watch", nil)
	ada.comment(ticket, "thanks")
	cyd.command("/inbox", "/inbox/read", nil)
	ada.command("/inbox", "/inbox/email", url.Values{"email": {"ada@example.org"}})
	// Joining: ada is the first person (admin); she sets the mode, invites
	// dan as an admin, withdraws another invitation, takes bob's role back.
	ada.command("/admin", "/admin/registration", url.Values{"mode": {"invite"}})
	newBrowser(t, s.URL).from("127.0.0.51").join(ada.invite("admin"), "dan")
	ada.invite("member")
	evs := eventsAfter(t, path, 0)
	ada.command("/admin", "/admin/invitations/"+evs[len(evs)-1].Data["invitation"].(string)+"/revoke", nil)
	ada.command("/admin", "/admin/roles", url.Values{"person": {"bob"}, "action": {"grant"}})
	ada.command("/admin", "/admin/roles", url.Values{"person": {"bob"}, "action": {"revoke"}})
	if got := typesOf(eventsAfter(t, path, len(evs))); got != "invitation_revoked role_granted role_revoked" {
		t.Fatalf("the admin's commands appended %q", got)
	}
	// Tokens: one made, one made and revoked.
	makeToken(t, ada, "ada", "ci", "read")
	makeToken(t, ada, "ada", "old", "write")
	if m := regexp.MustCompile(`action="(/account/tokens/[^/"]+/revoke)"`).FindStringSubmatch(ada.get("/people/ada").body); m != nil {
		ada.command("/people/ada", m[1], nil)
	}
	// Triage: a bulk change in one commit, a saved view kept, one deleted.
	ada.open("Bulk me")
	if r := ada.command("/tickets", "/tickets/bulk", url.Values{"action": {"label"}, "label": {"triaged"}, "tickets": {"1", "2"}}); r.status != 200 {
		t.Fatalf("bulk: got %d", r.status)
	}
	ada.command("/tickets?sort=comments", "/tickets/views", url.Values{"name": {"busy"}})
	ada.command("/tickets?author=bob", "/tickets/views", url.Values{"name": {"bob's"}})
	ada.post("/tickets/views/delete", ada.form("/tickets", "/tickets/views", url.Values{"name": {"bob's"}}))
	if got := typesOf(eventsAfter(t, path, len(eventsAfter(t, path, 0))-5)); got != "ticket_edited ticket_edited view_saved view_saved view_deleted" {
		t.Fatalf("triage appended %q", got)
	}
	// Fields, relations and templates (internal/fields): defined, set,
	// changed, removed, linked and unlinked.
	for _, f := range []url.Values{
		{"name": {"priority"}, "kind": {"one_of"}, "choices": {"low\nhigh"}},
		{"name": {"points"}, "kind": {"number"}},
		{"name": {"gone"}, "kind": {"text"}},
		{"name": {"priority"}, "kind": {"one_of"}, "choices": {"high\nlow\nurgent"}},
	} {
		if r := ada.command("/p/main/fields", "/p/main/fields", f); r.status != 303 {
			t.Fatalf("define field: %d\n%.600s", r.status, r.body)
		}
	}
	other := ada.open("Related")
	for _, c := range []struct {
		action string
		v      url.Values
	}{
		{ticket + "/fields", url.Values{"field": {"priority"}, "value": {"urgent"}}},
		{ticket + "/fields", url.Values{"field": {"points"}, "value": {"3"}}},
		{other + "/fields", url.Values{"field": {"points"}, "value": {"5"}}},
		{other + "/fields", url.Values{"field": {"points"}, "value": {""}}},
		{"/p/main/fields/remove", url.Values{"name": {"gone"}}},
		{ticket + "/relations", url.Values{"kind": {"blocks"}, "other": {other[len("/tickets/"):]}}},
		{ticket + "/relations", url.Values{"kind": {"relates_to"}, "other": {other[len("/tickets/"):]}}},
		{ticket + "/relations/remove", url.Values{"kind": {"relates_to"}, "other": {other[len("/tickets/"):]}}},
		{"/p/main/templates", url.Values{"name": {"Bug"}, "body": {"## Steps"}}},
		{"/p/main/templates", url.Values{"name": {"Idea"}, "body": {"## Why"}}},
		{"/p/main/templates/remove", url.Values{"name": {"Idea"}}},
	} {
		page := ticket
		if strings.HasPrefix(c.action, "/p/") {
			page = "/p/main/fields"
		}
		if r := ada.post(c.action, ada.form(page, "", c.v)); r.status != 303 {
			t.Fatalf("%s %v: %d\n%.600s", c.action, c.v, r.status, r.body)
		}
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("server exit %d", code)
	}

	// Then a generated history.
	a, err := openApp(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BRAID_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (BRAID_SEED=%d to replay)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	sum, err := tickettest.Run(ctx, rng, tickets.NewService(a.writer, a.reg, a.types.tickets),
		&auth.Service{DB: a.db, Writer: a.writer, Types: a.types.users, Cost: 4, Override: auth.RegistrationOpen},
		tickettest.Config{Commands: 1500, Notify: &notify.Service{Writer: a.writer, Types: a.types.notify},
			Projects: &access.Service{Writer: a.writer, Types: a.types.access}})
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	if a.writer.Head().Position < 1000 {
		t.Fatalf("generated only %d events (%+v)", a.writer.Head().Position, sum)
	}
	// Webhooks: made, changed, turned off and on again (internal/hooks).
	hs := &hooks.Service{Writer: a.writer, Registry: a.reg, Types: a.types.hooks}
	for i := range 3 {
		id, _, err := hs.Create(ctx, access.System, access.Default, "https://hooks.example.org/"+strconv.Itoa(i), "ticket_opened", "")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := hs.Change(ctx, access.System, access.Default, id, "https://hooks.example.org/changed", "", ""); err != nil {
				t.Fatal(err)
			}
		}
		if i >= 1 {
			if err := hs.Disable(ctx, access.System, access.Default, id, ""); err != nil {
				t.Fatal(err)
			}
		}
		if i == 2 {
			if err := hs.Enable(ctx, access.System, access.Default, id, ""); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Issues imported from GitHub, and one imported person claimed
	// (internal/importer).
	gh, err := os.ReadFile("../../internal/importer/testdata/github/export.json")
	if err != nil {
		t.Fatal(err)
	}
	if x, err := importer.Parse(bytes.NewReader(gh), "github"); err != nil {
		t.Fatal(err)
	} else if _, err := a.importer().Run(ctx, x, importer.Options{}); err != nil {
		t.Fatal(err)
	}
	var imported, real string
	a.db.Read.QueryRow(`SELECT id FROM users WHERE imported_from != '' ORDER BY id LIMIT 1`).Scan(&imported)
	a.db.Read.QueryRow(`SELECT id FROM users WHERE imported_from = '' ORDER BY id LIMIT 1`).Scan(&real)
	if err := a.importer().Claim(ctx, auth.System, imported, real, ""); err != nil {
		t.Fatal(err)
	}

	// A word from a ticket's current title, to search for before and after.
	t1, err := tickets.Get(ctx, a.db.Read, 1)
	if err != nil {
		t.Fatal(err)
	}
	word := ""
	for _, f := range strings.FieldsFunc(t1.Title, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if len(f) >= 3 {
			word = f
			break
		}
	}
	found, err := tickets.Query(ctx, a.db.Read, tickets.Filter{Status: "all", Q: word})
	if err != nil {
		t.Fatal(err)
	}
	// The tables the writer built event by event are the ones a rebuild
	// makes: `web verify --deep` finds no difference.
	if d, err := events.DeepVerify(ctx, a.db.Read, a.reg, events.ReplayOptions{TempDir: t.TempDir()}); err != nil || !d.OK || len(d.Tables) < 10 {
		t.Fatalf("seed %d: deep verify of the live tables: %v, %s (%d tables, %d rows)", seed, err, d.Problem(), len(d.Tables), d.Rows)
	}
	before := dumpProjections(t, a.db, a.reg)
	if res, err := events.Replay(ctx, a.db, a.reg, a.writer, events.ReplayOptions{}); err != nil {
		t.Fatalf("seed %d: replay: %v", seed, err)
	} else if res.Events != a.writer.Head().Position {
		t.Fatalf("replayed %d events, head is %d", res.Events, a.writer.Head().Position)
	}
	after := dumpProjections(t, a.db, a.reg)
	for table, want := range before {
		if after[table] != want {
			t.Fatalf("seed %d: table %s differs after replay\ngot:\n%.2000s\nwant:\n%.2000s", seed, table, after[table], want)
		}
		if want == "" && table != "ticket_labels" { // every other table, notify's included, has rows
			t.Fatalf("table %s is empty: the comparison proves nothing", table)
		}
	}
	// Search still finds what it found.
	l, err := tickets.Query(ctx, a.db.Read, tickets.Filter{Status: "all", Q: word})
	if err != nil || l.Total != found.Total || (word != "" && l.Total < 1) {
		t.Fatalf("search for %q after replay: %v, %d results; before %d", word, err, l.Total, found.Total)
	}

	// And the command itself, as a user runs it, says what it did.
	a.Close()
	var out strings.Builder
	if code := run(ctx, []string{"replay", "--db", path}, func(string) string { return "" }, nil, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "projections: users, roles, site_settings, invitations, tokens, tickets, comments, ticket_search") {
		t.Fatalf("web replay: exit %d, output %q", code, out.String())
	}
}
