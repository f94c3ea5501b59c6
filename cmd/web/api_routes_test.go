package main

import (
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"braid/internal/events"
)

// routeRE finds the routes registered in routes.go: the surface at a
// glance is also the list this test must cover.
var routeRE = regexp.MustCompile(`\b[a-z]+\.(GET|HEAD|POST|PUT|PATCH|DELETE)\("([^"]+)"`)

// registeredRoutes reads routes.go's route table ("METHOD /path").
func registeredRoutes(tb testing.TB) []string {
	tb.Helper()
	src, err := os.ReadFile("routes.go")
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, m := range routeRE.FindAllStringSubmatch(string(src), -1) {
		out = append(out, m[1]+" "+m[2])
	}
	if len(out) < 50 {
		tb.Fatalf("found only %d routes in routes.go: has its shape changed?", len(out))
	}
	return out
}

// TestEveryRouteWithTokenAndJSON drives every route of routes.go the way a
// script does: a personal access token, JSON bodies, no cookie and no CSRF
// token. Each answer is checked here (status, JSON, appended or not) and,
// by TestMain, against internal/api/openapi.json. Routes a token may not use
// (signing in, passkeys, making tokens, changing a password) answer 403 in
// the JSON error shape and append nothing. A route added to routes.go
// without a line here fails the test.
func TestEveryRouteWithTokenAndJSON(t *testing.T) {
	srv := startServer(t, "--webhook-allow-private")
	b := newBrowser(t, srv.URL)
	b.register("alice") // the first person: site admin
	bob := newBrowser(t, srv.URL).from("127.0.0.2")
	bob.register("bob")
	rw := script{t, srv.URL, makeToken(t, b, "alice", "rw", "read", "write")}
	ro := script{t, srv.URL, makeToken(t, b, "alice", "ro", "read")}
	adm := script{t, srv.URL, makeToken(t, b, "alice", "adm", "read", "write", "admin")}
	bobRW := script{t, srv.URL, makeToken(t, bob, "bob", "bob-rw", "read", "write")}

	// A little world to act on: a project, a ticket with a comment, a
	// webhook, an invitation.
	must := func(r reply, want int) reply {
		t.Helper()
		if r.status != want {
			t.Fatalf("setup: got %d, want %d\n%.800s", r.status, want, r.raw)
		}
		return r
	}
	must(adm.do("POST", "/projects", `{"slug":"ops","name":"Operations"}`), 201)
	must(rw.do("POST", "/tickets", `{"title":"Printer on fire","body":"see @bob","labels":["hw"]}`), 201)
	must(rw.do("POST", "/tickets/1/comments", `{"body":"extinguisher?"}`), 201)
	must(rw.do("POST", "/tickets/1/comments", `{"body":"or water?"}`), 201)
	must(rw.do("POST", "/tickets", `{"title":"Second","project":"ops"}`), 201)
	hook := must(adm.do("POST", "/p/ops/webhooks", `{"url":"http://127.0.0.1:9/hook","events":""}`), 201)
	hookID, _ := dig(hook.json, "webhook", "id").(string)
	if hookID == "" {
		hookID, _ = hook.json["id"].(string)
	}
	if hookID == "" {
		t.Fatalf("webhook id not in %s", hook.raw)
	}
	inv := must(adm.do("POST", "/admin/invitations", `{"role":"member","expires_in":24}`), 201)
	link, _ := inv.json["link"].(string)
	joinToken := link[strings.LastIndex(link, "/")+1:]

	// Tiles and proofs need the first signed checkpoint (at most a second).
	waitCheckpoint(t, srv.URL, int64(countEvents(t, srv.DB)))
	version := func() string {
		r := ro.do("GET", "/tickets/1", "")
		v, _ := dig(r.json, "ticket", "version").(float64)
		return strconv.Itoa(int(v))
	}

	type step struct {
		who     script
		method  string
		path    string
		body    string
		status  int
		appends bool
		notJSON string // the Content-Type when the contract's answer is not JSON
		bodyFn  func() string
		accept  string // what the request accepts, when not JSON
	}
	none := script{t, srv.URL, "brd_" + strings.Repeat("A", 43)}
	anyone := script{t, srv.URL, ""} // static files: no token at all
	steps := map[string][]step{
		// Public and stateless: a token is not needed and does no harm.
		"GET /healthz":             {{who: ro, path: "/healthz", status: 200, notJSON: "text/plain"}},
		"HEAD /healthz":            {{who: ro, method: "HEAD", path: "/healthz", status: 200, notJSON: "-"}},
		"GET /static/*":            {{who: anyone, path: "/static/braid.css", status: 200, notJSON: "text/css", accept: "text/css"}},
		"GET /checkpoint":          {{who: ro, path: "/checkpoint", status: 200, notJSON: "text/plain"}},
		"GET /tile/*":              {{who: ro, path: "/tile/0/000.p/1", status: 200, notJSON: "application/octet-stream"}},
		"GET /proof/inclusion":     {{who: ro, path: "/proof/inclusion?position=1", status: 200}},
		"GET /proof/consistency":   {{who: ro, path: "/proof/consistency?old=1", status: 200}},
		"GET /api/openapi.json":    {{who: ro, path: "/api/openapi.json", status: 200}},
		"GET /":                    {{who: ro, path: "/", status: 200}}, // 303 to /tickets, followed
		"GET /verify":              {{who: ro, path: "/verify", status: 200}},
		"GET /tile/entries/*":      {{who: adm, path: "/tile/entries/000.p/1", status: 200, notJSON: "application/octet-stream"}, {who: bobRW, path: "/tile/entries/000.p/1", status: 404}},
		"GET /anchors/:id":         {{who: ro, path: "/anchors/1", status: 404}},
		"GET /anchors/:id/receipt": {{who: ro, path: "/anchors/1/receipt", status: 404}},

		// Signing in, joining and account security are for people at a
		// browser: a token is refused, and nothing is appended.
		"GET /register":                         {{who: ro, path: "/register", status: 403}},
		"POST /register":                        {{who: rw, method: "POST", path: "/register", body: `{"username":"mallory","password":"correct horse battery","password_confirmation":"correct horse battery"}`, status: 403}},
		"GET /login":                            {{who: ro, path: "/login", status: 403}},
		"POST /login":                           {{who: rw, method: "POST", path: "/login", body: `{"username":"alice","password":"x"}`, status: 403}},
		"POST /logout":                          {{who: rw, method: "POST", path: "/logout", status: 403}},
		"POST /login/passkey/options":           {{who: rw, method: "POST", path: "/login/passkey/options", status: 403}},
		"POST /login/passkey":                   {{who: rw, method: "POST", path: "/login/passkey", body: `{}`, status: 403}},
		"GET /reset/:token":                     {{who: ro, path: "/reset/abc", status: 403}},
		"POST /reset/:token":                    {{who: rw, method: "POST", path: "/reset/abc", body: `{"password":"x"}`, status: 403}},
		"GET /join/:token":                      {{who: ro, path: "/join/" + joinToken, status: 403}},
		"POST /join/:token":                     {{who: rw, method: "POST", path: "/join/" + joinToken, body: `{"username":"mallory"}`, status: 403}},
		"POST /join/:token/passkey/options":     {{who: rw, method: "POST", path: "/join/" + joinToken + "/passkey/options", status: 403}},
		"POST /join/:token/passkey":             {{who: rw, method: "POST", path: "/join/" + joinToken + "/passkey", body: `{}`, status: 403}},
		"POST /account/username":                {{who: adm, method: "POST", path: "/account/username", body: `{"username":"alicia","password":"x"}`, status: 403}},
		"POST /account/password":                {{who: adm, method: "POST", path: "/account/password", body: `{"current":"x","password":"y"}`, status: 403}},
		"POST /account/sessions":                {{who: adm, method: "POST", path: "/account/sessions", status: 403}},
		"POST /account/passkeys/options":        {{who: adm, method: "POST", path: "/account/passkeys/options", status: 403}},
		"POST /account/passkeys":                {{who: adm, method: "POST", path: "/account/passkeys", body: `{}`, status: 403}},
		"POST /account/passkeys/:id/remove":     {{who: adm, method: "POST", path: "/account/passkeys/x/remove", status: 403}},
		"POST /account/tokens":                  {{who: adm, method: "POST", path: "/account/tokens", body: `{"name":"x"}`, status: 403}},
		"POST /account/tokens/:id/revoke":       {{who: adm, method: "POST", path: "/account/tokens/x/revoke", status: 403}},
		"POST /p/:slug/tokens":                  {{who: adm, method: "POST", path: "/p/ops/tokens", body: `{"name":"bot"}`, status: 403}},
		"POST /account/name":                    {{who: rw, method: "POST", path: "/account/name", body: `{"display_name":"Alice A."}`, status: 403}},
		"GET /people/:username":                 {{who: ro, path: "/people/bob", status: 200}, {who: ro, path: "/people/nobody", status: 404}},
		"GET /admin":                            {{who: adm, path: "/admin", status: 200}, {who: bobRW, path: "/admin", status: 403}},
		"POST /admin/invitations":               {{who: adm, method: "POST", path: "/admin/invitations", body: `{"role":"member","expires_in":24}`, status: 201, appends: true}, {who: rw, method: "POST", path: "/admin/invitations", body: `{"role":"member","expires_in":24}`, status: 403}},
		"POST /admin/invitations/:id/revoke":    {{who: adm, method: "POST", path: "/admin/invitations/nope/revoke", status: 404}},
		"POST /admin/registration":              {{who: adm, method: "POST", path: "/admin/registration", body: `{"mode":"closed"}`, status: 200, appends: true}, {who: adm, method: "POST", path: "/admin/registration", body: `{"mode":"wide open"}`, status: 422}},
		"POST /admin/roles":                     {{who: adm, method: "POST", path: "/admin/roles", body: `{"person":"robert","action":"grant"}`, status: 200, appends: true}, {who: bobRW, method: "POST", path: "/admin/roles", body: `{"person":"alice","action":"revoke"}`, status: 403}},
		"POST /admin/rename":                    {{who: adm, method: "POST", path: "/admin/rename", body: `{"person":"bob","username":"robert"}`, status: 200, appends: true}},
		"POST /admin/claim":                     {{who: adm, method: "POST", path: "/admin/claim", body: `{"imported":"gh-nobody","by":"alice"}`, status: 422}, {who: rw, method: "POST", path: "/admin/claim", body: `{"imported":"gh-nobody","by":"alice"}`, status: 403}},
		"GET /projects":                         {{who: ro, path: "/projects", status: 200}},
		"POST /projects":                        {{who: adm, method: "POST", path: "/projects", body: `{"slug":"web","name":"Web site"}`, status: 201, appends: true}, {who: adm, method: "POST", path: "/projects", body: `{"slug":"Not A Slug!","name":"x"}`, status: 422}},
		"GET /p/:slug":                          {{who: ro, path: "/p/ops", status: 200}, {who: ro, path: "/p/nope", status: 404}},
		"GET /p/:slug/people":                   {{who: adm, path: "/p/ops/people", status: 200}},
		"POST /p/:slug/people":                  {{who: adm, method: "POST", path: "/p/ops/people", body: `{"person":"robert","role":"member"}`, status: 200, appends: true}},
		"POST /p/:slug/people/revoke":           {{who: adm, method: "POST", path: "/p/ops/people/revoke", body: `{"person":"robert"}`, status: 200, appends: true}},
		"POST /p/:slug/everyone":                {{who: adm, method: "POST", path: "/p/ops/everyone", body: `{"on":"1"}`, status: 200, appends: true}},
		"POST /p/:slug/invitations":             {{who: adm, method: "POST", path: "/p/ops/invitations", body: `{"role":"viewer","expires_in":24}`, status: 201, appends: true}},
		"GET /p/:slug/history":                  {{who: adm, path: "/p/ops/history", status: 200}},
		"GET /p/:slug/webhooks":                 {{who: adm, path: "/p/ops/webhooks", status: 200}},
		"POST /p/:slug/webhooks":                {{who: adm, method: "POST", path: "/p/ops/webhooks", body: `{"url":"ftp://127.0.0.1/x"}`, status: 422}},
		"GET /p/:slug/webhooks/:id":             {{who: adm, path: "/p/ops/webhooks/" + hookID, status: 200}},
		"POST /p/:slug/webhooks/:id":            {{who: adm, method: "POST", path: "/p/ops/webhooks/" + hookID, body: `{"url":"http://127.0.0.1:9/hook2","events":""}`, status: 200, appends: true}},
		"POST /p/:slug/webhooks/:id/toggle":     {{who: adm, method: "POST", path: "/p/ops/webhooks/" + hookID + "/toggle", body: `{"on":"0"}`, status: 200, appends: true}},
		"POST /p/:slug/webhooks/:id/redeliver":  {{who: adm, method: "POST", path: "/p/ops/webhooks/" + hookID + "/redeliver", body: `{"position":"1"}`, status: 422}},
		"GET /tickets":                          {{who: ro, path: "/tickets", status: 200}},
		"GET /tickets/new":                      {{who: ro, path: "/tickets/new", status: 200}},
		"POST /tickets":                         {{who: rw, method: "POST", path: "/tickets", body: `{"title":"Third"}`, status: 201, appends: true}},
		"POST /tickets/:id/tasks":               {{who: rw, method: "POST", path: "/tickets/1/tasks", bodyFn: func() string { return `{"index":0,"checked":true,"version":` + version() + `}` }, status: 422}},
		"GET /p/:slug/fields":                   {{who: adm, path: "/p/ops/fields", status: 200}},
		"POST /p/:slug/fields":                  {{who: adm, method: "POST", path: "/p/ops/fields", body: `{"name":"priority","kind":"one_of","choices":"low\nhigh"}`, status: 200, appends: true}, {who: adm, method: "POST", path: "/p/ops/fields", body: `{"name":"size","kind":"colour"}`, status: 422}},
		"POST /p/:slug/fields/remove":           {{who: adm, method: "POST", path: "/p/ops/fields/remove", body: `{"name":"nothing"}`, status: 422}},
		"POST /p/:slug/templates":               {{who: adm, method: "POST", path: "/p/ops/templates", body: `{"name":"Bug","body":"## Steps"}`, status: 200, appends: true}},
		"POST /p/:slug/templates/remove":        {{who: adm, method: "POST", path: "/p/ops/templates/remove", body: `{"name":"Bug"}`, status: 200, appends: true}},
		"POST /tickets/:id/fields":              {{who: rw, method: "POST", path: "/tickets/2/fields", body: `{"field":"priority","value":"high"}`, status: 200, appends: true}, {who: rw, method: "POST", path: "/tickets/2/fields", body: `{"field":"priority","value":"urgent"}`, status: 422}},
		"POST /tickets/:id/relations":           {{who: rw, method: "POST", path: "/tickets/1/relations", body: `{"kind":"blocks","other":"3"}`, status: 200, appends: true}, {who: rw, method: "POST", path: "/tickets/1/relations", body: `{"kind":"blocks","other":"1"}`, status: 422}},
		"POST /tickets/:id/relations/remove":    {{who: rw, method: "POST", path: "/tickets/1/relations/remove", body: `{"kind":"blocks","other":"3"}`, status: 200, appends: true}},
		"POST /tickets/:id/attachments":         {{who: rw, method: "POST", path: "/tickets/1/attachments", body: `{"file":"x"}`, status: 422}},
		"GET /files/:sha":                       {{who: ro, path: "/files/" + strings.Repeat("ab", 32), status: 404}},
		"GET /files/:sha/:name":                 {{who: ro, path: "/files/" + strings.Repeat("ab", 32) + "/x.png", status: 404}},
		"GET /admin/erase":                      {{who: adm, path: "/admin/erase", status: 200}, {who: bobRW, path: "/admin/erase", status: 403}},
		"POST /admin/erase":                     {{who: adm, method: "POST", path: "/admin/erase", body: `{"scope":"ticket","target":"2","reason":"pasted a secret"}`, status: 200}, {who: adm, method: "POST", path: "/admin/erase", body: `{"scope":"ticket","target":"2","reason":"pasted a secret","confirm":true}`, status: 200, appends: true}, {who: rw, method: "POST", path: "/admin/erase", body: `{"scope":"ticket","target":"1","reason":"x","confirm":true}`, status: 403}},
		"GET /tickets/:id/comments/:cid/erase":  {{who: ro, path: "/tickets/1/comments/1/erase", status: 200}},
		"POST /tickets/:id/comments/:cid/erase": {{who: ro, method: "POST", path: "/tickets/1/comments/1/erase", body: `{"reason":"read scope"}`, status: 403}, {who: rw, method: "POST", path: "/tickets/1/comments/1/erase", body: `{"reason":"typed a password"}`, status: 200, appends: true}},
		"POST /tickets/bulk":                    {{who: rw, method: "POST", path: "/tickets/bulk", body: `{"tickets":[1,2],"action":"label","label":"triaged"}`, status: 200, appends: true}, {who: rw, method: "POST", path: "/tickets/bulk", body: `{"tickets":[1],"action":"explode"}`, status: 422}},
		"POST /tickets/views":                   {{who: rw, method: "POST", path: "/tickets/views", body: `{"name":"mine","query":"status=open&sort=created"}`, status: 200, appends: true}},
		"POST /tickets/views/delete":            {{who: rw, method: "POST", path: "/tickets/views/delete", body: `{"name":"mine"}`, status: 200, appends: true}},
		"GET /tickets/:id":                      {{who: ro, path: "/tickets/1", status: 200}, {who: ro, path: "/tickets/99", status: 404}},
		"GET /tickets/:id/edit":                 {{who: ro, path: "/tickets/1/edit", status: 200}},
		"PATCH /tickets/:id": {{who: rw, method: "PATCH", path: "/tickets/1", bodyFn: func() string {
			return `{"title":"Printer was on fire","body":"out now","labels":"hw","version":` + version() + `}`
		}, status: 200, appends: true}},
		"POST /tickets/:id/assign":              {{who: rw, method: "POST", path: "/tickets/1/assign", body: `{"assignee":"alice"}`, status: 200, appends: true}, {who: rw, method: "POST", path: "/tickets/1/assign", body: `{"assignee":"nobody"}`, status: 422}},
		"POST /tickets/:id/close":               {{who: rw, method: "POST", path: "/tickets/1/close", status: 200, appends: true}},
		"POST /tickets/:id/reopen":              {{who: rw, method: "POST", path: "/tickets/1/reopen", status: 200, appends: true}},
		"GET /tickets/:id/history":              {{who: ro, path: "/tickets/1/history", status: 200}},
		"GET /tickets/:id/proof":                {{who: ro, path: "/tickets/1/proof", status: 200}},
		"POST /tickets/:id/comments":            {{who: rw, method: "POST", path: "/tickets/1/comments", body: `{"body":"second thoughts"}`, status: 201, appends: true}, {who: rw, method: "POST", path: "/tickets/1/comments", body: `{"body":""}`, status: 422}},
		"GET /tickets/:id/comments/:cid/edit":   {{who: ro, path: "/tickets/1/comments/1/edit", status: 200}},
		"PATCH /tickets/:id/comments/:cid":      {{who: rw, method: "PATCH", path: "/tickets/1/comments/1", body: `{"body":"fire extinguisher"}`, status: 200, appends: true}, {who: bobRW, method: "PATCH", path: "/tickets/1/comments/1", body: `{"body":"mine now"}`, status: 403}},
		"GET /tickets/:id/comments/:cid/delete": {{who: ro, path: "/tickets/1/comments/2/delete", status: 200}},
		"DELETE /tickets/:id/comments/:cid":     {{who: rw, method: "DELETE", path: "/tickets/1/comments/2", status: 200, appends: true}},
		"POST /tickets/:id/watch":               {{who: bobRW, method: "POST", path: "/tickets/1/watch", status: 200, appends: true}},
		"POST /tickets/:id/unwatch":             {{who: bobRW, method: "POST", path: "/tickets/1/unwatch", status: 200, appends: true}},
		"GET /inbox":                            {{who: ro, path: "/inbox", status: 200}},
		"GET /inbox/badge":                      {{who: ro, path: "/inbox/badge", status: 200}},
		"POST /inbox/read":                      {{who: bobRW, method: "POST", path: "/inbox/read", bodyFn: func() string { return `{"up_to":"` + strconv.Itoa(countEvents(t, srv.DB)) + `"}` }, status: 200, appends: true}},
		"POST /inbox/email":                     {{who: rw, method: "POST", path: "/inbox/email", body: `{"email":"alice@example.org"}`, status: 200, appends: true}, {who: rw, method: "POST", path: "/inbox/email", body: `{"email":"not an address"}`, status: 422}},
		"GET /events":                           {{who: ro, path: "/events", status: 200}},
		"GET /events/stream":                    {{who: ro, path: "/events/stream?after=nope", status: 422}},
		"GET /events/:position":                 {{who: ro, path: "/events/1", status: 200}, {who: ro, path: "/events/999999", status: 404}},
	}

	var missing []string
	for _, r := range registeredRoutes(t) {
		if _, ok := steps[r]; !ok {
			missing = append(missing, r)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("routes.go has routes this test does not drive with a token: %s", strings.Join(missing, ", "))
	}

	// Reads first, then commands, then deletions, so each acts on the
	// world as the ones before left it.
	keys := make([]string, 0, len(steps))
	for k := range steps {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		switch {
		case strings.HasPrefix(k, "GET ") || strings.HasPrefix(k, "HEAD "):
			return 0
		case strings.HasPrefix(k, "DELETE "):
			return 2
		}
		return 1
	}
	sort.Slice(keys, func(i, j int) bool {
		if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		for _, s := range steps[k] {
			if s.method == "" {
				s.method = "GET"
			}
			name := k + " " + s.path
			t.Run(name, func(t *testing.T) {
				before := countEvents(t, srv.DB)
				if s.bodyFn != nil {
					s.body = s.bodyFn()
				}
				var r reply
				if s.accept == "" {
					s.accept = "application/json"
				}
				if s.method == "POST" || s.method == "PATCH" || s.method == "DELETE" {
					// Every command carries its own idempotency key.
					r = s.who.do(s.method, s.path, s.body, "Idempotency-Key", events.NewID(), "Accept", s.accept)
				} else {
					r = s.who.do(s.method, s.path, s.body, "Accept", s.accept)
				}
				if r.status != s.status {
					t.Fatalf("got %d, want %d\n%.600s", r.status, s.status, r.raw)
				}
				ct := r.header.Get("Content-Type")
				switch {
				case s.notJSON == "-":
				case s.notJSON != "":
					if !strings.HasPrefix(ct, s.notJSON) {
						t.Errorf("Content-Type %q, want %s", ct, s.notJSON)
					}
				case !strings.HasPrefix(ct, "application/json"):
					t.Errorf("Content-Type %q, want JSON\n%.300s", ct, r.raw)
				}
				if s.status >= 400 {
					if code, _ := dig(r.json, "error", "code").(float64); int(code) != s.status || dig(r.json, "error", "message") == "" {
						t.Errorf("want the error shape with code %d: %.300s", s.status, r.raw)
					}
				}
				if got := countEvents(t, srv.DB) - before; (got > 0) != s.appends {
					t.Errorf("appended %d events, want appends=%v", got, s.appends)
				}
			})
		}
	}
	// A token the server never made is 401 on any signed-in route.
	if r := none.do("GET", "/tickets", ""); r.status != http.StatusUnauthorized {
		t.Errorf("unknown token: got %d", r.status)
	}
	verifyDB(t, srv.DB)
}
