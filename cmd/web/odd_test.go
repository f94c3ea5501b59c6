package main

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestOddRequests is the red team's list at the HTTP edge: odd methods,
// bad encodings, unknown content types, path tricks, JSON everywhere,
// oversized parts. Each answers the status named, never a 5xx, and
// appends nothing.
func TestOddRequests(t *testing.T) {
	s := startServer(t)
	ada, anon := newBrowser(t, s.URL), newBrowser(t, s.URL)
	ada.register("ada")
	tk := ada.open("odd")
	if a := ada.post(tk+"/comments", ada.form(tk, tk+"/comments", url.Values{"body": {"first"}})); a.status != http.StatusSeeOther {
		t.Fatalf("comment: got %d, want 303", a.status)
	}
	token := map[*browser]string{
		ada:  ada.form("/tickets/new", "", nil).Get("_csrf"),
		anon: anon.form("/login", "", nil).Get("_csrf"),
	}
	const (
		form = "application/x-www-form-urlencoded"
		json = "application/json"
	)
	type tcase struct {
		name    string
		who     *browser
		method  string
		path    string
		ctype   string
		body    string // {csrf} and {cid} become the browser's token and a fresh command id
		headers []string
		want    int
	}
	cases := []tcase{
		// Methods.
		{"_method=FOO", ada, "POST", "/tickets", form, "_csrf={csrf}&command_id={cid}&_method=FOO&title=x", nil, 400},
		{"_method=GET skips no CSRF", ada, "POST", "/tickets", form, "_csrf={csrf}&command_id={cid}&_method=GET&title=x", nil, 400},
		{"_method=PUT", ada, "POST", tk, form, "_csrf={csrf}&command_id={cid}&_method=PUT&title=x", nil, 400},
		{"_method lower case", ada, "POST", tk, form, "_csrf={csrf}&command_id={cid}&_method=patch&title=x", nil, 400},
		{"_method in the query only", ada, "POST", tk + "?_method=PATCH", form, "_csrf={csrf}&command_id={cid}&title=x", nil, 404},
		{"_method=DELETE on a ticket", ada, "POST", tk, form, "_csrf={csrf}&command_id={cid}&_method=DELETE", nil, 404},
		{"delete unknown comment", ada, "POST", tk + "/comments/99", form, "_csrf={csrf}&command_id={cid}&_method=DELETE", nil, 404},
		{"delete comment x", ada, "POST", tk + "/comments/x", form, "_csrf={csrf}&command_id={cid}&_method=DELETE", nil, 404},
		{"TRACE", ada, "TRACE", "/tickets", "", "", nil, 404},
		{"OPTIONS", ada, "OPTIONS", "/tickets", "", "", nil, 404},
		{"PUT", ada, "PUT", tk, form, "_csrf={csrf}&command_id={cid}&title=x", nil, 404},
		{"made-up method", ada, "FOO", "/tickets", "", "", nil, 403},
		{"real DELETE without token", ada, "DELETE", tk + "/comments/1", "", "", nil, 403},

		// Encodings and content types.
		{"query %zz", ada, "GET", "/tickets?q=%zz&status=%zz", "", "", nil, 200},
		{"next=%zz", anon, "GET", "/login?next=%zz", "", "", nil, 200},
		{"form %zz", ada, "POST", "/tickets", form, "_csrf={csrf}&command_id={cid}&title=%zz", nil, 400},
		{"form %zz, JSON wanted", ada, "POST", tk + "/comments", form, "_csrf={csrf}&command_id={cid}&body=%zz", []string{"Accept", json}, 400},
		{"form %zz signed out", anon, "POST", "/login", form, "_csrf={csrf}&username=%zz", nil, 400},
		{"query %zz on a post", ada, "POST", "/tickets?x=%zz", form, "_csrf={csrf}&command_id={cid}&title=x", nil, 400},
		{"JSON body", ada, "POST", "/tickets", json, `{"title":"x","_csrf":"{csrf}"}`, nil, 403},
		{"XML body", ada, "POST", "/tickets", "application/xml", "_csrf={csrf}&command_id={cid}&title=x", nil, 403},
		{"no content type", ada, "POST", "/tickets", "", "_csrf={csrf}&command_id={cid}&title=x", nil, 403},
		{"malformed content type", ada, "POST", "/tickets", "a/b; ;;==", "_csrf={csrf}&command_id={cid}&title=x", nil, 400},
		{"multipart", ada, "POST", tk + "/assign", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"assignee\"\r\n\r\nx\r\n--x--\r\n", nil, 415},
		// The forms that may carry files take multipart (attach.go), still only with the token.
		{"multipart upload form without token", ada, "POST", "/tickets", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nx\r\n--x--\r\n", nil, 403},
		{"malformed multipart upload form", ada, "POST", "/tickets", "multipart/form-data; boundary=x", "--y\r\nnonsense", nil, 400},
		{"multipart, JSON wanted", anon, "POST", "/login", "multipart/form-data; boundary=x", "--x--\r\n", []string{"Accept", json}, 415},
		{"body too large, JSON wanted", ada, "POST", "/tickets", form, "_csrf={csrf}&command_id={cid}&body=" + strings.Repeat("x", 1<<20), []string{"Accept", json}, 413},

		// Paths.
		{"dot dot", ada, "GET", "/tickets/../events", "", "", nil, 404},
		{"escaped dot dot", ada, "GET", "/tickets/%2e%2e", "", "", nil, 404},
		{"escaped dot dot deeper", ada, "GET", "/tickets/%2e%2e/events", "", "", nil, 404},
		{"escaped slash", ada, "GET", "/tickets/1%2Fedit", "", "", nil, 404},
		{"exponent id", ada, "GET", "/tickets/1e3", "", "", nil, 404},
		{"negative id", ada, "GET", "/tickets/-1", "", "", nil, 404},
		{"zero id", ada, "GET", "/tickets/0", "", "", nil, 404},
		{"id past int64", ada, "GET", "/tickets/99999999999999999999", "", "", nil, 404},
		{"position past int64", ada, "GET", "/events/99999999999999999999", "", "", nil, 404},
		{"negative position", ada, "GET", "/events/-1", "", "", nil, 404},
		{"NUL in path", ada, "GET", "/tickets/%00", "", "", nil, 404},
		{"anchor x", ada, "GET", "/anchors/x", "", "", nil, 404},
		{"comment x", ada, "GET", tk + "/comments/x/edit", "", "", nil, 404},
		{"100 kB path", ada, "GET", "/" + strings.Repeat("a", 100_000), "", "", nil, 404},
		{"5 kB ticket id", ada, "GET", "/tickets/" + strings.Repeat("9", 5000), "", "", nil, 404},
		{"2 MB header", ada, "GET", "/tickets", "", "", []string{"X-Big", strings.Repeat("a", 2<<20)}, 431},
		{"garbage cookies", anon, "GET", "/tickets", "", "", []string{"Cookie", "session=%zz; braid_csrf=%00"}, 303},
		{"static POST", anon, "POST", "/static/braid.css", form, "x=1", nil, 405},
	}

	// Accept: application/json on every route, signed in and out.
	for _, r := range []struct {
		path     string
		in, out  int
		wantJSON bool
	}{
		{"/", 303, 303, false},
		{"/tickets", 200, 401, true},
		{"/tickets/new", 200, 401, true},
		{tk, 200, 401, true},
		{tk + "/edit", 200, 401, true},
		{tk + "/history", 200, 401, true},
		{tk + "/comments/1/edit", 200, 401, true},
		{"/events", 200, 401, true},
		{"/events/1", 200, 401, true},
		{"/events/999", 404, 401, true},
		{"/anchors/1", 404, 401, true},
		{"/anchors/1/receipt", 404, 401, true},
		{"/verify", 200, 200, true},
		{"/login", 200, 200, true},
		{"/register", 200, 200, true},
		{"/healthz", 200, 200, false},
		{"/nope", 404, 401, true},
	} {
		cases = append(cases,
			tcase{"JSON in GET " + r.path, ada, "GET", r.path, "", "", []string{"Accept", json}, r.in},
			tcase{"JSON out GET " + r.path, anon, "GET", r.path, "", "", []string{"Accept", json}, r.out})
	}
	// Signed out, the pages behind sign-in send to /login (303) before the
	// token is looked at.
	for _, r := range []struct {
		path                          string
		inToken, outNoToken, outToken int
	}{
		{"/tickets", 422, 303, 303},
		{tk + "/assign", 422, 303, 303},
		{tk + "/comments", 422, 303, 303},
		{"/login", 422, 403, 422},
		{"/register", 422, 403, 422},
	} {
		cases = append(cases,
			tcase{"JSON in POST no token " + r.path, ada, "POST", r.path, form, "x=1", []string{"Accept", json}, 403},
			tcase{"JSON out POST no token " + r.path, anon, "POST", r.path, form, "x=1", []string{"Accept", json}, r.outNoToken},
			tcase{"JSON in POST empty form " + r.path, ada, "POST", r.path, form, "_csrf={csrf}&command_id={cid}", []string{"Accept", json}, r.inToken},
			tcase{"JSON out POST empty form " + r.path, anon, "POST", r.path, form, "_csrf={csrf}&command_id={cid}", []string{"Accept", json}, r.outToken})
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := countEvents(t, s.DB)
			body := strings.NewReplacer("{csrf}", url.QueryEscape(token[tc.who]), "{cid}", freshID(t)).Replace(tc.body)
			req, err := http.NewRequest(tc.method, s.URL+tc.path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			res, err := tc.who.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Errorf("got %d, want %d\n%.300s", res.StatusCode, tc.want, b)
			}
			// The edge's own refusals speak JSON to a JSON client (forms
			// re-shown by a handler are the handler's business).
			if (tc.want == 400 || tc.want == 413 || tc.want == 415) && strings.Contains(req.Header.Get("Accept"), json) && !strings.HasPrefix(res.Header.Get("Content-Type"), json) {
				t.Errorf("a JSON client got a %s error", res.Header.Get("Content-Type"))
			}
			if n := countEvents(t, s.DB); n != before {
				t.Errorf("events: got %d, want %d (nothing appended)", n, before)
			}
		})
	}
}

func freshID(tb testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}
