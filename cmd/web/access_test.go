package main

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"braid/internal/access"
	"braid/internal/events"
)

// accessSite is a site with a project "acme" and one person per role:
// ada (the site's first person, so admin), olga owner, mia member, rita
// reporter, vic viewer, nina none (registered, no role in acme). zed holds
// nothing and is granted and revoked by the role-management cases.
type accessSite struct {
	s      *testServer
	people map[string]*browser // by role name
}

var ticketIDRE = regexp.MustCompile(`/tickets/(\d+)`)

func newAccessSite(t *testing.T) *accessSite {
	t.Helper()
	s := startServer(t)
	a := &accessSite{s: s, people: map[string]*browser{}}
	for i, p := range []struct{ role, name string }{{"admin", "ada"}, {"owner", "olga"}, {"member", "mia"}, {"reporter", "rita"}, {"viewer", "vic"}, {"none", "nina"}, {"", "zed"}} {
		b := newBrowser(t, s.URL).from(fmt.Sprintf("127.0.0.%d", 10+i))
		b.register(p.name)
		if p.role != "" {
			a.people[p.role] = b
		}
	}
	ada := a.people["admin"]
	if r := ada.command("/projects", "/projects", url.Values{"slug": {"acme"}, "name": {"Acme rockets"}}); r.status != http.StatusSeeOther {
		t.Fatalf("create acme: got %d, want 303\n%.800s", r.status, r.body)
	}
	for role, name := range map[string]string{"owner": "olga", "member": "mia", "reporter": "rita", "viewer": "vic"} {
		a.grant(t, ada, name, role)
	}
	return a
}

func (a *accessSite) grant(t *testing.T, by *browser, person, role string) {
	t.Helper()
	if r := by.command("/p/acme/people", "/p/acme/people", url.Values{"person": {person}, "role": {role}}); r.status != http.StatusSeeOther {
		t.Fatalf("grant %s %s: got %d, want 303\n%.800s", person, role, r.status, r.body)
	}
}

// openIn opens a ticket in acme as b and returns its path.
func (a *accessSite) openIn(t *testing.T, b *browser, title string) string {
	t.Helper()
	r := b.post("/tickets", b.form("/tickets/new?project=acme", "/tickets", url.Values{"title": {title}, "project": {"acme"}}))
	if r.status != http.StatusSeeOther {
		t.Fatalf("open %q: got %d, want 303\n%.800s", title, r.status, r.body)
	}
	return r.location
}

// commentOn comments on ticket as b.
func commentOn(t *testing.T, b *browser, ticket, body string) {
	t.Helper()
	r := b.command(ticket, ticket+"/comments", url.Values{"body": {body}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("comment on %s: got %d, want 303\n%.600s", ticket, r.status, r.body)
	}
}

// The role × command table over HTTP: every route that writes, for each
// role, is allowed (and appends) or answered 403 (and appends nothing),
// exactly as access.Table says.
func TestRoleCommandTable(t *testing.T) {
	a := newAccessSite(t)
	ada := a.people["admin"]

	// The reporter's own ticket and comment, and for viewer and none a
	// ticket and comment they made while they were reporters.
	own := map[string]string{}
	ownComment := map[string]string{}
	for role, name := range map[string]string{"admin": "ada", "owner": "olga", "member": "mia", "reporter": "rita", "viewer": "vic", "none": "nina"} {
		b := a.people[role]
		if role == "viewer" || role == "none" {
			a.grant(t, ada, name, "reporter")
		}
		own[role] = a.openIn(t, b, "opened by "+name)
		commentOn(t, b, own[role], "said by "+name)
		ownComment[role] = own[role] + "/comments/1"     // its first comment
		commentOn(t, b, own[role], "to erase, by "+name) // its second: erased below
		switch role {
		case "viewer":
			a.grant(t, ada, name, "viewer")
		case "none":
			if r := ada.command("/p/acme/people", "/p/acme/people/revoke", url.Values{"person": {name}}); r.status != http.StatusSeeOther {
				t.Fatalf("revoke nina: %d\n%.600s", r.status, r.body)
			}
		}
	}

	type cmd struct {
		name   string
		action access.Action
		// setup prepares the world (as ada) and returns the request.
		setup func(role string) (method, path string, fields url.Values)
		ok    int // the status when allowed
	}
	fresh := func(title string) string { return a.openIn(t, ada, title) }
	version := func(ticket string) string {
		return ada.form(ticket+"/edit", ticket, nil).Get("version")
	}
	cmds := []cmd{
		{"open a ticket", access.Open, func(role string) (string, string, url.Values) {
			return "POST", "/tickets", url.Values{"title": {"by " + role}, "project": {"acme"}}
		}, 303},
		{"edit someone's ticket", access.Edit, func(role string) (string, string, url.Values) {
			tk := fresh("to edit")
			return "PATCH", tk, url.Values{"title": {"edited by " + role}, "version": {version(tk)}}
		}, 303},
		{"edit one's own ticket", access.EditOwnTicket, func(role string) (string, string, url.Values) {
			tk := own[role]
			return "PATCH", tk, url.Values{"title": {"own, edited by " + role}, "version": {version(tk)}}
		}, 303},
		{"assign", access.Assign, func(role string) (string, string, url.Values) {
			return "POST", fresh("to assign") + "/assign", url.Values{"assignee": {"mia"}}
		}, 303},
		{"close", access.Close, func(role string) (string, string, url.Values) {
			return "POST", fresh("to close") + "/close", nil
		}, 303},
		{"reopen", access.Reopen, func(role string) (string, string, url.Values) {
			tk := fresh("to reopen")
			if r := ada.command(tk, tk+"/close", nil); r.status != 303 {
				t.Fatalf("close %s: %d", tk, r.status)
			}
			return "POST", tk + "/reopen", nil
		}, 303},
		{"comment", access.Comment, func(role string) (string, string, url.Values) {
			return "POST", fresh("to comment on") + "/comments", url.Values{"body": {"hello from " + role}}
		}, 303},
		{"edit one's own comment", access.EditOwnComment, func(role string) (string, string, url.Values) {
			return "PATCH", ownComment[role], url.Values{"body": {"edited by " + role}}
		}, 303},
		{"delete one's own comment", access.EditOwnComment, func(role string) (string, string, url.Values) {
			return "DELETE", ownComment[role], nil
		}, 303},
		{"erase one's own comment", access.EraseOwnComment, func(role string) (string, string, url.Values) {
			return "POST", own[role] + "/comments/2/erase", url.Values{"reason": {"mine"}}
		}, 303},
		{"erase a ticket's text", access.Erase, func(role string) (string, string, url.Values) {
			tk := fresh("to erase")
			return "POST", "/admin/erase", url.Values{"scope": {"ticket"}, "target": {strings.TrimPrefix(tk, "/tickets/")}, "reason": {"test"}, "confirm": {"yes"}}
		}, 303},
		{"watch", access.Watch, func(role string) (string, string, url.Values) {
			if role == "admin" { // ada watches what she opens
				return "POST", a.openIn(t, a.people["owner"], "to watch") + "/watch", nil
			}
			return "POST", fresh("to watch") + "/watch", nil
		}, 303},
		{"unwatch", access.Watch, func(role string) (string, string, url.Values) {
			tk := fresh("to unwatch")
			if r := a.people[role].post(tk+"/watch", url.Values{"_csrf": {a.csrf(role)}, "command_id": {events.NewID()}}); role != "none" && r.status != 303 {
				t.Fatalf("%s watches %s: %d", role, tk, r.status)
			}
			return "POST", tk + "/unwatch", nil
		}, 303},
		{"grant a role", access.ManageRoles, func(role string) (string, string, url.Values) {
			give := map[string]string{"admin": "viewer", "owner": "reporter"}[role] // a role zed does not hold yet
			if give == "" {
				give = "member"
			}
			return "POST", "/p/acme/people", url.Values{"person": {"zed"}, "role": {give}}
		}, 303},
		{"revoke a role", access.ManageRoles, func(role string) (string, string, url.Values) {
			if r := ada.command("/p/acme/people", "/p/acme/people", url.Values{"person": {"zed"}, "role": {"reporter"}}); r.status != 303 && r.status != 422 {
				t.Fatalf("grant zed: %d\n%.600s", r.status, r.body)
			}
			return "POST", "/p/acme/people/revoke", url.Values{"person": {"zed"}}
		}, 303},
		{"make everyone a member", access.ManageRoles, func(role string) (string, string, url.Values) {
			return "POST", "/p/acme/everyone", url.Values{"on": {"1"}}
		}, 303},
		{"invite into the project", access.Invite, func(role string) (string, string, url.Values) {
			return "POST", "/p/acme/invitations", url.Values{"role": {"member"}, "expires_in": {"2"}}
		}, 201},
		{"create a webhook", access.ManageWebhooks, func(role string) (string, string, url.Values) {
			return "POST", "/p/acme/webhooks", url.Values{"url": {"https://93.184.216.34/hook-" + role}}
		}, 201},
		{"define a field", access.ManageFields, func(role string) (string, string, url.Values) {
			return "POST", "/p/acme/fields", url.Values{"name": {"f-" + role}, "kind": {"text"}}
		}, 303},
		{"define a template", access.ManageTemplates, func(role string) (string, string, url.Values) {
			return "POST", "/p/acme/templates", url.Values{"name": {"t-" + role}, "body": {"steps"}}
		}, 303},
		{"set a field on someone's ticket", access.Edit, func(role string) (string, string, url.Values) {
			if r := ada.command("/p/acme/fields", "/p/acme/fields", url.Values{"name": {"component"}, "kind": {"text"}}); r.status != 303 && r.status != 422 {
				t.Fatalf("define component: %d\n%.600s", r.status, r.body)
			}
			return "POST", fresh("to set a field of") + "/fields", url.Values{"field": {"component"}, "value": {"by " + role}}
		}, 303},
		{"set a field on one's own ticket", access.EditOwnTicket, func(role string) (string, string, url.Values) {
			return "POST", own[role] + "/fields", url.Values{"field": {"component"}, "value": {"own, by " + role}}
		}, 303},
		{"relate two tickets", access.Edit, func(role string) (string, string, url.Values) {
			other := fresh("to relate to")
			return "POST", fresh("to relate") + "/relations", url.Values{"kind": {"blocks"}, "other": {other[strings.LastIndex(other, "/")+1:]}}
		}, 303},
		{"create a project", access.CreateProject, func(role string) (string, string, url.Values) {
			return "POST", "/projects", url.Values{"slug": {"p-" + role}, "name": {"Made by " + role}}
		}, 303},
		{"invite to the site", access.SiteAdmin, func(role string) (string, string, url.Values) {
			return "POST", "/admin/invitations", url.Values{"role": {"member"}, "expires_in": {"2"}}
		}, 201},
	}
	covered := map[access.Action]bool{access.Read: true} // reads: TestHiddenProjectIs404
	roles := []struct {
		name string
		role access.Role
	}{{"admin", access.Admin}, {"owner", access.Owner}, {"member", access.Member}, {"reporter", access.Reporter}, {"viewer", access.Viewer}, {"none", access.None}}
	for _, c := range cmds {
		covered[c.action] = true
		for _, r := range roles {
			method, path, fields := c.setup(r.name)
			v := url.Values{"_csrf": {a.csrf(r.name)}, "command_id": {events.NewID()}}
			if method != "POST" {
				v.Set("_method", method)
			}
			for k, x := range fields {
				v[k] = x
			}
			before := countEvents(t, a.s.DB)
			got := a.people[r.name].post(path, v)
			appended := countEvents(t, a.s.DB) - before
			allowed := r.role >= access.Table[c.action]
			if allowed {
				if got.status != c.ok || appended == 0 {
					t.Errorf("%s as %s: got %d appending %d, want %d appending something\n%.600s", c.name, r.name, got.status, appended, c.ok, got.body)
				}
			} else if got.status != http.StatusForbidden || appended != 0 {
				t.Errorf("%s as %s: got %d appending %d, want 403 appending nothing\n%.600s", c.name, r.name, got.status, appended, got.body)
			}
			if c.name == "make everyone a member" && allowed { // put it back for the next role
				if r := ada.command("/p/acme/people", "/p/acme/everyone", url.Values{"on": {"0"}}); r.status != 303 {
					t.Fatalf("everyone off: %d\n%.600s", r.status, r.body)
				}
			}
		}
	}
	for act := range access.Table {
		if !covered[act] {
			t.Errorf("access.Table has %q but no route of it is tested", act)
		}
	}
}

func (a *accessSite) csrf(role string) string {
	return a.people[role].form("/tickets/new", "", nil).Get("_csrf")
}

// A member whose role is revoked is refused their next command (403),
// appending nothing; the project's history shows the grant and the
// revocation with who made them.
func TestRevokedMemberIsRefused(t *testing.T) {
	a := newAccessSite(t)
	ada, olga, mia := a.people["admin"], a.people["owner"], a.people["member"]
	tk := a.openIn(t, olga, "printer on fire")
	commentOn(t, mia, tk, "on it")
	csrf := a.csrf("member")
	if r := olga.command("/p/acme/people", "/p/acme/people/revoke", url.Values{"person": {"mia"}}); r.status != 303 {
		t.Fatalf("olga revokes mia: got %d\n%.600s", r.status, r.body)
	}
	before := countEvents(t, a.s.DB)
	r := mia.post(tk+"/comments", url.Values{"_csrf": {csrf}, "command_id": {events.NewID()}, "body": {"still here?"}})
	if r.status != http.StatusForbidden {
		t.Fatalf("revoked mia comments: got %d, want 403\n%.600s", r.status, r.body)
	}
	if n := countEvents(t, a.s.DB) - before; n != 0 {
		t.Fatalf("the refused comment appended %d events", n)
	}
	// And she no longer sees the project.
	for _, p := range []string{tk, "/p/acme", "/p/acme/people", "/p/acme/history"} {
		if r := mia.get(p); r.status != http.StatusNotFound {
			t.Fatalf("revoked mia GET %s: got %d, want 404", p, r.status)
		}
	}
	h := ada.get("/p/acme/history")
	if h.status != 200 {
		t.Fatalf("history: %d", h.status)
	}
	for _, want := range []string{"project_role_revoked", "took the role member from Mia (mia), revoked by Olga (olga)", "made Mia (mia) member, granted by Ada (ada)", "project_created"} {
		if !strings.Contains(h.body, want) {
			t.Errorf("project history lacks %q\n%.3000s", want, h.body)
		}
	}
}

// Reads of a project one may not see are 404, as if it were not there;
// /tickets lists only the tickets of projects one may see; the default
// project lets everyone signed in in, until its owner turns that off.
func TestHiddenProjectIs404(t *testing.T) {
	a := newAccessSite(t)
	ada, nina, vic := a.people["admin"], a.people["none"], a.people["viewer"]
	tk := a.openIn(t, ada, "secret rocket")
	mainTk := ada.open("in the main project")
	id := ticketIDRE.FindStringSubmatch(tk)[1]
	for _, p := range []string{tk, tk + "/edit", tk + "/history", tk + "/proof", tk + "/comments/1/edit", "/p/acme", "/p/acme/people", "/p/acme/history", "/p/nope"} {
		if r := nina.get(p); r.status != http.StatusNotFound {
			t.Errorf("nina GET %s: got %d, want 404", p, r.status)
		}
		if strings.Contains(p, "/proof") || strings.Contains(p, "/comments/") || p == "/p/nope" { // no checkpoint, no comment yet
			continue
		}
		if r := vic.get(p); r.status != http.StatusOK {
			t.Errorf("vic (viewer) GET %s: got %d, want 200", p, r.status)
		}
	}
	l := nina.get("/tickets?status=all")
	if strings.Contains(l.body, "secret rocket") || !strings.Contains(l.body, "in the main project") {
		t.Errorf("nina's /tickets shows acme's ticket or lacks main's:\n%.2000s", l.body)
	}
	if l := nina.get("/tickets?status=all&q=secret"); strings.Contains(l.body, `href="/tickets/`+id+`"`) {
		t.Errorf("nina finds acme's ticket by searching")
	}
	if l := vic.get("/p/acme?status=all"); !strings.Contains(l.body, "secret rocket") || strings.Contains(l.body, "in the main project") {
		t.Errorf("/p/acme is not acme's tickets:\n%.2000s", l.body)
	}
	if l := ada.get("/tickets?status=all&project=acme"); !strings.Contains(l.body, "secret rocket") || strings.Contains(l.body, "in the main project") {
		t.Errorf("?project=acme is not acme's tickets")
	}
	// The default project: everyone is a member until that is turned off.
	if r := nina.get(mainTk); r.status != 200 {
		t.Fatalf("nina reads a main ticket: %d", r.status)
	}
	if r := ada.command("/p/main/people", "/p/main/everyone", url.Values{"on": {"0"}}); r.status != 303 {
		t.Fatalf("everyone off on main: %d\n%.600s", r.status, r.body)
	}
	if r := nina.get(mainTk); r.status != http.StatusNotFound {
		t.Fatalf("nina reads a main ticket after everyone was turned off: got %d, want 404", r.status)
	}
	// The new-ticket form offers only projects one may open tickets in.
	if f := vic.get("/tickets/new"); strings.Contains(f.body, `value="acme"`) {
		t.Errorf("vic (viewer) is offered acme on the new-ticket form")
	}
	if f := a.people["reporter"].get("/tickets/new"); !strings.Contains(f.body, `value="acme"`) {
		t.Errorf("rita (reporter) is not offered acme on the new-ticket form")
	}
}

// An owner invites a person straight into the project; the joined person
// holds the role, granted by the owner, and an invitation into a project
// that the inviter does not own is refused.
func TestInvitationIntoProject(t *testing.T) {
	a := newAccessSite(t)
	olga, mia := a.people["owner"], a.people["member"]
	r := olga.command("/p/acme/people", "/p/acme/invitations", url.Values{"role": {"reporter"}, "expires_in": {"24"}})
	if r.status != http.StatusCreated {
		t.Fatalf("olga invites: got %d, want 201\n%.800s", r.status, r.body)
	}
	m := joinRE.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no link:\n%.2000s", r.body)
	}
	before := countEvents(t, a.s.DB)
	newcomer := newBrowser(t, a.s.URL).from("127.0.0.30")
	if j := newcomer.join(m[1], "pat"); j.status != 303 {
		t.Fatalf("pat joins: %d\n%.600s", j.status, j.body)
	}
	evs := eventsAfter(t, a.s.DB, before)
	if got := typesOf(evs); got != "user_registered invitation_used project_role_granted" {
		t.Fatalf("joining appended %q", got)
	}
	g := evs[2].Data
	if g["project"] != "acme" || g["person"] != idOf(t, a.s.DB, "pat") || g["role"] != "reporter" || g["by"] != idOf(t, a.s.DB, "olga") {
		t.Fatalf("grant %+v", g)
	}
	tk := a.openIn(t, newcomer, "pat's first")
	if r := newcomer.command(tk, tk+"/close", nil); r.status != http.StatusForbidden {
		t.Fatalf("pat (reporter) closes: got %d, want 403", r.status)
	}
	// A member may not invite into the project.
	csrf := a.csrf("member")
	before = countEvents(t, a.s.DB)
	if r := mia.post("/p/acme/invitations", url.Values{"_csrf": {csrf}, "command_id": {events.NewID()}, "role": {"owner"}, "expires_in": {"2"}}); r.status != http.StatusForbidden {
		t.Fatalf("mia invites: got %d, want 403", r.status)
	}
	if n := countEvents(t, a.s.DB) - before; n != 0 {
		t.Fatalf("refused invitation appended %d", n)
	}
}
