package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"braid/internal/api"
)

// The HTTP tests keep internal/api/openapi.json true: every answer the
// server gives them (through http.DefaultTransport, which newBrowser and
// plain clients use) is recorded, and after the tests have run each one a
// script could rely on (JSON, or a route the document gives in another
// type) is validated against the document with kin-openapi. A mismatch,
// or a JSON answer from a route the document lacks, fails the run with a
// list: method, route, status, what is wrong. Redirects (3xx) and HEAD
// answers carry no body to check.

func TestMain(m *testing.M) {
	rec := &apiRecorder{next: http.DefaultTransport}
	http.DefaultTransport = rec
	code := m.Run()
	// Checked even when a test failed: a mismatch is worth knowing then too.
	if problems := rec.check(); len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d answers of the HTTP tests do not match internal/api/openapi.json:\n", len(problems))
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "  "+p)
		}
		code = 1
	} else if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "openapi: %d answers checked against internal/api/openapi.json\n", rec.checked)
	}
	os.Exit(code)
}

// jsonWrites: every command asked for JSON answers JSON (brief T's JSON
// writes, docs/api.md). Until they are merged, an HTML answer to a
// command that asked for JSON (a refused form drawn again) is not
// counted; once they are, set it true and such an answer fails the run.
const jsonWrites = true

// apiRecorder is an http.RoundTripper that keeps every answer of this
// server (known by its security headers) for checking later.
type apiRecorder struct {
	next    http.RoundTripper
	mu      sync.Mutex
	pairs   []apiPair
	bytes   int
	checked int
}

type apiPair struct {
	method, path, query string
	reqHeader, header   http.Header
	status              int
	body                []byte // JSON answers only
}

// maxRecorded bounds what the recorder keeps: past it, answers are not
// recorded (a suite that big should check in parts).
const maxRecorded = 256 << 20

func (r *apiRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := r.next.RoundTrip(req)
	if err != nil || !isBraid(res.Header) {
		return res, err
	}
	p := apiPair{method: req.Method, path: req.URL.Path, query: req.URL.RawQuery, reqHeader: req.Header.Clone(),
		header: res.Header.Clone(), status: res.StatusCode}
	if isJSON(res.Header.Get("Content-Type")) {
		b, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		res.Body = io.NopCloser(bytes.NewReader(b))
		if rerr != nil {
			return res, nil
		}
		p.body = b
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bytes+len(p.body) <= maxRecorded {
		r.bytes += len(p.body)
		r.pairs = append(r.pairs, p)
	}
	return res, nil
}

// isBraid tells this server's answers from other servers' the tests talk
// to (witnesses, timestamp authorities, chains, object stores).
func isBraid(h http.Header) bool {
	return strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") && h.Get("X-Frame-Options") == "DENY"
}

func isJSON(ct string) bool {
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "application/json"
}

// askedJSON: the request said it wants JSON (Accept), sent JSON, or
// carried a token; the answer must then be JSON (API.md).
func askedJSON(h http.Header) bool {
	return strings.Contains(h.Get("Accept"), "application/json") || isJSON(h.Get("Content-Type")) ||
		strings.HasPrefix(h.Get("Authorization"), "Bearer ")
}

// apiDoc loads and validates the document once.
var apiDoc = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.Document)
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate(context.Background())
})

// apiRoute finds the operation for method and path: literal segments
// before parameters; a last parameter named "rest" takes every remaining
// segment (tile paths span slashes, which OpenAPI templates cannot).
func apiRoute(doc *openapi3.T, method, path string) (*routers.Route, map[string]string) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	var best *routers.Route
	var bestParams map[string]string
	bestScore := -1
	for tmpl, item := range doc.Paths.Map() {
		ts := strings.Split(strings.TrimPrefix(tmpl, "/"), "/")
		params, score, ok := map[string]string{}, 0, true
		for i, t := range ts {
			if i >= len(segs) {
				ok = false
				break
			}
			if t == "{rest}" && i == len(ts)-1 {
				params["rest"] = strings.Join(segs[i:], "/")
				break
			}
			if i == len(ts)-1 && len(ts) != len(segs) {
				ok = false
				break
			}
			switch {
			case strings.HasPrefix(t, "{"):
				params[t[1:len(t)-1]] = segs[i]
			case t == segs[i]:
				score++
			default:
				ok = false
			}
			if !ok {
				break
			}
		}
		if !ok || score <= bestScore && best != nil {
			continue
		}
		op := item.GetOperation(method)
		if op == nil {
			continue
		}
		best, bestParams, bestScore = &routers.Route{Spec: doc, Path: tmpl, PathItem: item, Method: method, Operation: op}, params, score
	}
	return best, bestParams
}

// check validates every recorded answer and returns the mismatches, one
// line each, counted when the same one recurs.
func (r *apiRecorder) check() []string {
	doc, err := apiDoc()
	if err != nil {
		return []string{"internal/api/openapi.json: " + err.Error()}
	}
	errSchema := doc.Components.Responses["Error"].Value.Content.Get("application/json").Schema.Value
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]int{}
	for _, p := range r.pairs {
		if p.method == http.MethodHead || p.status/100 == 3 {
			continue
		}
		route, params := apiRoute(doc, p.method, p.path)
		isJ := isJSON(p.header.Get("Content-Type"))
		if !isJ && !askedJSON(p.reqHeader) && (route == nil || !documentsOnlyOther(route.Operation)) {
			continue // a page for a browser
		}
		if !isJ && !jsonWrites && p.method != http.MethodGet && p.method != http.MethodHead {
			continue // a command's page, until JSON writes are in (see jsonWrites)
		}
		r.checked++
		where := fmt.Sprintf("%s %s %d", p.method, p.path, p.status)
		if route != nil {
			where = fmt.Sprintf("%s %s %d", p.method, route.Path, p.status)
		}
		var problem string
		switch {
		case !isJ && askedJSON(p.reqHeader) && (route == nil || !documentsOnlyOther(route.Operation)):
			problem = fmt.Sprintf("asked for JSON, answered %q", p.header.Get("Content-Type"))
		case route == nil && p.status < 400:
			problem = "answers JSON but the document has no such route"
		case route == nil:
			problem = validateAgainst(errSchema, p.body)
		case !isJ:
			problem = checkContentType(route.Operation, p.status, p.header.Get("Content-Type"))
		default:
			problem = validateAnswer(route, params, p)
		}
		if problem != "" {
			seen[where+": "+problem]++
		}
	}
	var out []string
	for k, n := range seen {
		if n > 1 {
			k += fmt.Sprintf(" (×%d)", n)
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// documentsOnlyOther: the operation answers something other than JSON
// when it succeeds (/checkpoint, tiles, the event stream).
func documentsOnlyOther(op *openapi3.Operation) bool {
	for code, rr := range op.Responses.Map() {
		if code != "default" && code[0] == '2' && rr.Value.Content.Get("application/json") == nil {
			return true
		}
	}
	return false
}

func checkContentType(op *openapi3.Operation, status int, ct string) string {
	rr := op.Responses.Status(status)
	if rr == nil {
		rr = op.Responses.Default()
	}
	if rr == nil {
		return "status not in the document"
	}
	if rr.Value.Content.Get(ct) == nil {
		mt, _, _ := mime.ParseMediaType(ct)
		if rr.Value.Content.Get(mt) == nil {
			return fmt.Sprintf("content type %q not in the document", ct)
		}
	}
	return ""
}

func validateAgainst(s *openapi3.Schema, body []byte) string {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return "not JSON: " + err.Error()
	}
	if err := s.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		return oneLine(err.Error())
	}
	return ""
}

func validateAnswer(route *routers.Route, params map[string]string, p apiPair) string {
	req, err := http.NewRequest(p.method, "http://braid.test"+p.path+"?"+p.query, nil)
	if err != nil {
		return err.Error()
	}
	req.Header = p.reqHeader
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 p.status,
		Header:                 p.header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(p.body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return oneLine(err.Error())
	}
	return ""
}

// oneLine keeps a validation error readable in a list: its lines joined,
// the value kin-openapi quotes cut short.
func oneLine(s string) string {
	lines := strings.Split(s, "\n")
	lines = slices.DeleteFunc(lines, func(l string) bool { return strings.TrimSpace(l) == "" })
	s = strings.Join(lines, " | ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

// TestOpenAPIDocumentServed: /api/openapi.json is public and is the
// embedded document, byte for byte.
func TestOpenAPIDocumentServed(t *testing.T) {
	s := startServer(t)
	a := newBrowser(t, s.URL).do("GET", "/api/openapi.json", nil, "Accept", "application/json")
	if a.status != http.StatusOK || !isJSON(a.header.Get("Content-Type")) || a.body != string(api.Document) {
		t.Fatalf("GET /api/openapi.json: %d %q, %d bytes (want 200 JSON, the %d bytes of internal/api/openapi.json)",
			a.status, a.header.Get("Content-Type"), len(a.body), len(api.Document))
	}
}

// TestOpenAPICheckCatchesDrift: the check that TestMain runs finds an
// answer that lost a required field, a JSON route the document lacks, an
// HTML answer to a JSON request, a wrong error shape and a wrong type, and
// passes the same answers when they are right.
func TestOpenAPICheckCatchesDrift(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t, s.URL)
	b.register("ada")
	id := strings.TrimPrefix(b.open("Drift"), "/tickets/")
	rec := &apiRecorder{next: http.DefaultTransport}
	client := &http.Client{Jar: b.c.Jar, Transport: rec, CheckRedirect: b.c.CheckRedirect}
	get := func(path string) {
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		req.Header.Set("Accept", "application/json")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	get("/tickets")
	get("/tickets/" + id)
	get("/tickets/999999")
	if got := rec.check(); len(got) != 0 || rec.checked != 3 {
		t.Fatalf("true answers: checked %d (want 3), problems %q", rec.checked, got)
	}
	edit := func(i int, f func(m map[string]any)) {
		var m map[string]any
		if err := json.Unmarshal(rec.pairs[i].body, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		rec.pairs[i].body, _ = json.Marshal(m)
	}
	edit(0, func(m map[string]any) { delete(m, "tickets") })
	edit(1, func(m map[string]any) { m["ticket"].(map[string]any)["version"] = "7" })
	edit(2, func(m map[string]any) { m["error"] = "not found" })
	html := rec.pairs[0]
	html.header = html.header.Clone()
	html.header.Set("Content-Type", "text/html; charset=UTF-8")
	unknown := rec.pairs[1]
	unknown.path = "/tickets/" + id + "/secret"
	rec.pairs = append(rec.pairs, html, unknown)
	rec.checked = 0
	got := strings.Join(rec.check(), "\n")
	for _, want := range []string{
		`GET /tickets 200: `, `"tickets"`,
		`GET /tickets/{id} 200: `, `version`,
		`GET /tickets/{id} 404: `,
		`asked for JSON, answered "text/html`,
		`GET /tickets/` + id + `/secret 200: answers JSON but the document has no such route`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the check missed %q; it said:\n%s", want, got)
		}
	}
}
