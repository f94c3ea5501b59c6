package main

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// expect posts a command and checks its status and how many events it
// appended.
func expect(t *testing.T, s *testServer, b *browser, page, action string, fields url.Values, status, appended int) answer {
	t.Helper()
	before := countEvents(t, s.DB)
	r := b.command(page, action, fields)
	if got := countEvents(t, s.DB) - before; r.status != status || got != appended {
		t.Fatalf("POST %s %v: got %d appending %d, want %d appending %d\n%.1500s", action, fields, r.status, got, status, appended, r.body)
	}
	return r
}

// refused posts a command b's pages offer no form for: 403, nothing appended.
func refused(t *testing.T, s *testServer, b *browser, action string, fields url.Values) {
	t.Helper()
	v := b.form("/tickets/new", "/tickets", nil)
	v.Del("title")
	for k, x := range fields {
		v[k] = x
	}
	before := countEvents(t, s.DB)
	if r := b.post(action, v); r.status != http.StatusForbidden || countEvents(t, s.DB) != before {
		t.Fatalf("POST %s: got %d, want 403 appending nothing\n%.600s", action, r.status, r.body)
	}
}

// listIDs are the ticket numbers of a list page, in order.
func fieldListIDs(t *testing.T, b *browser, path string) string {
	t.Helper()
	r := b.do("GET", path, nil, "Accept", "application/json")
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %d\n%.600s", path, r.status, r.body)
	}
	var l struct {
		Tickets []struct{ ID int64 } `json:"tickets"`
	}
	if err := json.Unmarshal([]byte(r.body), &l); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range l.Tickets {
		ids = append(ids, itoa64(x.ID))
	}
	return strings.Join(ids, " ")
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// aggregatesAfter lists "aggregate_id:kind" of the events after position from.
func aggregatesAfter(t *testing.T, path string, from int) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out string
	if err := db.QueryRow(`SELECT group_concat(e.aggregate_id || ':' || e.event_type || ':' || json_extract(COALESCE(p.data, e.data), '$.kind') || ':' || json_extract(COALESCE(p.data, e.data), '$.other'), ' ')
		FROM events e LEFT JOIN payloads p ON p.position = e.position WHERE e.position > ?`, from).Scan(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// An owner defines fields; each definition and each value is validated
// (422, the message beside the field, nothing appended); values show on
// the ticket and in its JSON, and the list filters and sorts by them.
func TestCustomFields(t *testing.T) {
	s := startServer(t)
	ada, bob := newBrowser(t, s.URL), newBrowser(t, s.URL)
	ada.register("ada") // the site admin
	bob.register("bob") // a member of main (everyone is)

	bad := []struct {
		name   string
		fields url.Values
		field  string
	}{
		{"no name", url.Values{"name": {""}, "kind": {"text"}}, "name"},
		{"long name", url.Values{"name": {strings.Repeat("n", 41)}, "kind": {"text"}}, "name"},
		{"odd name", url.Values{"name": {"<b>"}, "kind": {"text"}}, "name"},
		{"unknown kind", url.Values{"name": {"x"}, "kind": {"colour"}}, "kind"},
		{"one-of without choices", url.Values{"name": {"x"}, "kind": {"one_of"}}, "choices"},
		{"51 choices", url.Values{"name": {"x"}, "kind": {"one_of"}, "choices": {strings.Repeat("c\n", 0) + manyChoices(51)}}, "choices"},
		{"long choice", url.Values{"name": {"x"}, "kind": {"one_of"}, "choices": {strings.Repeat("c", 41)}}, "choices"},
		{"twice", url.Values{"name": {"x"}, "kind": {"one_of"}, "choices": {"a\na"}}, "choices"},
		{"choices on text", url.Values{"name": {"x"}, "kind": {"text"}, "choices": {"a"}}, "choices"},
	}
	for _, c := range bad {
		r := expect(t, s, ada, "/p/main/fields", "/p/main/fields", c.fields, 422, 0)
		if !strings.Contains(r.body, `id="`+c.field+`-error"`) {
			t.Errorf("%s: no message beside %s\n%.2000s", c.name, c.field, r.body)
		}
	}
	// Only owners and admins define fields.
	refused(t, s, bob, "/p/main/fields", url.Values{"name": {"x"}, "kind": {"text"}})

	for _, f := range []url.Values{
		{"name": {"priority"}, "kind": {"one_of"}, "choices": {"low\r\nnormal\r\nhigh\r\nurgent"}},
		{"name": {"points"}, "kind": {"number"}},
		{"name": {"due"}, "kind": {"date"}},
		{"name": {"component"}, "kind": {"text"}},
	} {
		expect(t, s, ada, "/p/main/fields", "/p/main/fields", f, 303, 1)
	}
	page := ada.get("/p/main/fields").body
	for _, w := range []string{"priority", "one of a list", ">low<", "urgent", "points", "number", "due", "date"} {
		if !strings.Contains(page, w) {
			t.Errorf("the fields page lacks %q", w)
		}
	}

	t1, t2, t3 := bob.open("one"), bob.open("two"), ada.open("three")
	setField := func(b *browser, tk, field, value string, status, appended int) answer {
		t.Helper()
		return expect(t, s, b, tk, tk+"/fields", url.Values{"field": {field}, "value": {value}}, status, appended)
	}
	for _, c := range []struct{ field, value, says string }{
		{"priority", "critical", "priority is one of low, normal, high, urgent"},
		{"points", "three", "points is a number"},
		{"points", "NaN", "points is a number"},
		{"due", "23/11/2026", "due is a date written YYYY-MM-DD"},
		{"due", "2026-02-30", "due is a date"},
		{"component", "a\x00b", "component"},
		{"component", strings.Repeat("c", 201), "component"},
	} {
		r := setField(bob, t1, c.field, c.value, 422, 0)
		if !strings.Contains(r.body, `id="field-`+c.field+`-error"`) || !strings.Contains(r.body, c.says) {
			t.Errorf("%s=%q: no message %q beside the field\n%.3000s", c.field, c.value, c.says, r.body)
		}
	}
	setField(bob, t1, "severity", "high", 404, 0) // no such field
	setField(bob, t1, "priority", "high", 303, 1)
	setField(bob, t1, "priority", "high", 422, 0) // unchanged
	setField(bob, t1, "points", "2.5", 303, 1)
	setField(bob, t1, "due", "2026-12-01", 303, 1)
	setField(bob, t2, "priority", "urgent", 303, 1)
	setField(bob, t2, "points", "10", 303, 1)
	setField(ada, t3, "priority", "low", 303, 1)
	setField(ada, t3, "points", "9", 303, 1)
	// bob may edit his own tickets but, as a member, anyone's too; a
	// viewer may not: see TestRoleCommandTable.

	show := bob.get(t1).body
	for _, w := range []string{`<option value="high" selected`, `value="2.5"`, `value="2026-12-01"`} {
		if !strings.Contains(show, w) {
			t.Errorf("ticket page lacks %q", w)
		}
	}
	js := bob.do("GET", t1, nil, "Accept", "application/json")
	if !strings.Contains(js.body, `"fields":{"due":"2026-12-01","points":"2.5","priority":"high"}`) {
		t.Errorf("ticket JSON: %.800s", js.body)
	}
	if h := bob.get(t1 + "/history").body; !strings.Contains(h, "priority") || !strings.Contains(h, "2026-12-01") {
		t.Errorf("the history does not show the field values\n%.3000s", h)
	}
	// Clearing.
	setField(bob, t1, "due", "", 303, 1)
	if strings.Contains(bob.get(t1).body, `value="2026-12-01"`) {
		t.Error("the cleared date still shows")
	}

	id := func(tk string) string { return tk[strings.LastIndex(tk, "/")+1:] }
	for _, c := range []struct{ query, want string }{
		{"field.priority=high", id(t1)},
		{"field.priority=urgent", id(t2)},
		{"field.priority=nope", ""},
		{"sort=field.priority", id(t3) + " " + id(t1) + " " + id(t2)}, // low, high, urgent: the order of the choices
		{"sort=field.points", id(t1) + " " + id(t3) + " " + id(t2)},   // 2.5, 9, 10: as numbers
		{"sort=field.due", ""},
	} {
		got := fieldListIDs(t, bob, "/tickets?status=all&"+c.query)
		if c.query == "sort=field.due" {
			if got != id(t3)+" "+id(t2)+" "+id(t1) { // no values: by number, newest first
				t.Errorf("%s: got %q", c.query, got)
			}
			continue
		}
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.query, got, c.want)
		}
	}
	if r := bob.get("/tickets?sort=field.nothing"); r.status != 422 {
		t.Errorf("sort by an unknown field: got %d, want 422", r.status)
	}
	// Removing a field hides its values.
	expect(t, s, ada, "/p/main/fields", "/p/main/fields/remove", url.Values{"name": {"points"}}, 303, 1)
	if strings.Contains(bob.get(t1).body, `value="2.5"`) {
		t.Error("a removed field still shows")
	}
	// Changing a field's choices is field_changed.
	expect(t, s, ada, "/p/main/fields", "/p/main/fields", url.Values{"name": {"priority"}, "kind": {"one_of"}, "choices": {"urgent\nhigh\nnormal\nlow"}}, 303, 1)
	if got := fieldListIDs(t, bob, "/tickets?status=all&sort=field.priority"); got != id(t2)+" "+id(t1)+" "+id(t3) {
		t.Errorf("sorted after reordering choices: got %q", got)
	}
	if got := typesOf(eventsAfter(t, s.DB, 0)); !strings.Contains(got, "field_defined") || !strings.Contains(got, "field_changed") || !strings.Contains(got, "field_removed") || !strings.Contains(got, "ticket_field_set") {
		t.Errorf("events: %s", got)
	}
}

func manyChoices(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("c" + strings.Repeat("x", i%5) + itoa64(int64(i)) + "\n")
	}
	return b.String()
}

var relationRE = regexp.MustCompile(`(?s)<ul class="relations">(.*?)</ul>`)

func relationsOf(t *testing.T, b *browser, tk string) string {
	t.Helper()
	m := relationRE.FindStringSubmatch(b.get(tk).body)
	if m == nil {
		return ""
	}
	return regexp.MustCompile(`\s+`).ReplaceAllString(regexp.MustCompile(`(?s)<form.*?</form>|<[^>]+>`).ReplaceAllString(m[1], " "), " ")
}

// A relation is one command appending an event on each ticket, shown on
// both pages with the other's title and state; self-links and repeats
// are refused; a ticket the reader may not see is not shown.
func TestRelations(t *testing.T) {
	s := startServer(t)
	ada, bob := newBrowser(t, s.URL), newBrowser(t, s.URL)
	ada.register("ada")
	bob.register("bob")
	t1, t2 := bob.open("Fix login"), bob.open("Release 2.0")
	n1, n2 := t1[strings.LastIndex(t1, "/")+1:], t2[strings.LastIndex(t2, "/")+1:]
	before := len(eventsAfter(t, s.DB, 0))
	expect(t, s, bob, t1, t1+"/relations", url.Values{"kind": {"blocks"}, "other": {"#" + n2}}, 303, 2)
	if got, want := aggregatesAfter(t, s.DB, before), n1+":relation_added:blocks:"+n2+" "+n2+":relation_added:blocked_by:"+n1; got != want {
		t.Fatalf("events: got %q, want %q", got, want)
	}
	if got := relationsOf(t, bob, t1); !strings.Contains(got, "Blocks #"+n2+" Release 2.0 open") {
		t.Errorf("ticket 1 shows %q", got)
	}
	if got := relationsOf(t, bob, t2); !strings.Contains(got, "Blocked by #"+n1+" Fix login open") {
		t.Errorf("ticket 2 shows %q", got)
	}
	if h := bob.get(t2 + "/history").body; !strings.Contains(h, "blocked by #"+n1) {
		t.Errorf("ticket 2's history does not show the relation\n%.3000s", h)
	}
	for _, c := range []struct {
		fields url.Values
		says   string
	}{
		{url.Values{"kind": {"blocks"}, "other": {n1}}, "cannot be related to itself"},
		{url.Values{"kind": {"blocks"}, "other": {n2}}, "blocks #" + n2 + " already"},
		{url.Values{"kind": {"follows"}, "other": {n2}}, "Choose blocks"},
		{url.Values{"kind": {"blocks"}, "other": {"abc"}}, "Give the other ticket"},
		{url.Values{"kind": {"blocks"}, "other": {"999"}}, "There is no ticket #999"},
	} {
		r := expect(t, s, bob, t1, t1+"/relations", c.fields, 422, 0)
		if !strings.Contains(r.body, `id="other-error"`) || !strings.Contains(r.body, c.says) {
			t.Errorf("%v: no message %q beside the field\n%.3000s", c.fields, c.says, r.body)
		}
	}
	// Closing shows on the other side.
	ada.post(t2+"/close", ada.form(t2, t2+"/close", nil))
	if got := relationsOf(t, bob, t1); !strings.Contains(got, "Release 2.0 closed") {
		t.Errorf("ticket 1 shows %q", got)
	}
	// A ticket in a project bob may not see: ada links it; bob sees
	// neither the link nor its title.
	ada.command("/projects", "/projects", url.Values{"slug": {"secret"}, "name": {"Secret"}})
	r := ada.post("/tickets", ada.form("/tickets/new?project=secret", "/tickets", url.Values{"title": {"Hidden plans"}, "project": {"secret"}}))
	if r.status != 303 {
		t.Fatalf("open in secret: %d", r.status)
	}
	n3 := r.location[strings.LastIndex(r.location, "/")+1:]
	expect(t, s, ada, t1, t1+"/relations", url.Values{"kind": {"relates_to"}, "other": {n3}}, 303, 2)
	if got := relationsOf(t, ada, t1); !strings.Contains(got, "Hidden plans") {
		t.Errorf("ada sees %q", got)
	}
	if body := bob.get(t1).body; strings.Contains(body, "Hidden plans") || strings.Contains(body, "#"+n3) {
		t.Error("bob sees the hidden ticket's relation")
	}
	// bob may not link to it either: it is not there for him.
	expect(t, s, bob, t1, t1+"/relations", url.Values{"kind": {"duplicates"}, "other": {n3}}, 422, 0)
	// Removing undoes both sides.
	expect(t, s, bob, t1, t1+"/relations/remove", url.Values{"kind": {"blocks"}, "other": {n2}}, 303, 2)
	if got := relationsOf(t, bob, t2); got != "" {
		t.Errorf("ticket 2 still shows %q", got)
	}
	before = countEvents(t, s.DB)
	if r := bob.post(t1+"/relations/remove", bob.form(t1, t1+"/relations", url.Values{"kind": {"blocks"}, "other": {n2}})); r.status != 422 || countEvents(t, s.DB) != before ||
		!strings.Contains(r.body, "has no such relation") {
		t.Errorf("removing a relation that is not there: got %d\n%.600s", r.status, r.body)
	}
}

// Templates: a project with none offers none; an owner's template is a
// plain link on the new-ticket page that fills the body.
func TestTemplates(t *testing.T) {
	s := startServer(t)
	ada, bob := newBrowser(t, s.URL), newBrowser(t, s.URL)
	ada.register("ada")
	bob.register("bob")
	if strings.Contains(bob.get("/tickets/new").body, "Start from a template") {
		t.Error("a project without templates offers some")
	}
	if r := expect(t, s, ada, "/p/main/fields", "/p/main/templates", url.Values{"name": {""}, "body": {"x"}}, 422, 0); !strings.Contains(r.body, `id="template-name-error"`) {
		t.Errorf("no message beside the template's name\n%.2000s", r.body)
	}
	expect(t, s, ada, "/p/main/fields", "/p/main/templates", url.Values{"name": {strings.Repeat("n", 61)}, "body": {"x"}}, 422, 0)
	expect(t, s, ada, "/p/main/fields", "/p/main/templates", url.Values{"name": {"Bug"}, "body": {strings.Repeat("b", 20001)}}, 422, 0)
	refused(t, s, bob, "/p/main/templates", url.Values{"name": {"Bug"}, "body": {"x"}})
	expect(t, s, ada, "/p/main/fields", "/p/main/templates", url.Values{"name": {"Bug report"}, "body": {"## Steps\r\n1. \r\n## Expected\r\n"}}, 303, 1)
	page := bob.get("/tickets/new").body
	link := `href="/tickets/new?project=main&amp;template=Bug+report"`
	if !strings.Contains(page, link) {
		t.Fatalf("new-ticket page lacks %s\n%.2000s", link, page)
	}
	filled := bob.get("/tickets/new?project=main&template=Bug+report")
	if filled.status != 200 || !strings.Contains(filled.body, "## Steps\n1. \n## Expected\n</textarea>") {
		t.Errorf("the template did not fill the body: %d\n%.3000s", filled.status, filled.body)
	}
	if r := bob.get("/tickets/new?project=main&template=Nope"); r.status != 404 {
		t.Errorf("unknown template: %d", r.status)
	}
	expect(t, s, ada, "/p/main/fields", "/p/main/templates/remove", url.Values{"name": {"Bug report"}}, 303, 1)
	if strings.Contains(bob.get("/tickets/new").body, "Start from a template") {
		t.Error("a removed template is still offered")
	}
}
