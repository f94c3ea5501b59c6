package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"braid/internal/errs"
	"braid/internal/events"
	"braid/internal/web"
)

// jsonFields lists, for each command route that takes a JSON body, the
// fields it reads: the form's field names (docs/api.md). A field not
// listed is refused (422), so a misspelt one never passes unnoticed.
var jsonFields = map[string][]string{
	"POST /tickets":                      {"title", "body", "labels", "project"},
	"PATCH /tickets/:id":                 {"title", "body", "labels", "version"},
	"POST /tickets/bulk":                 {"tickets", "action", "label", "assignee"},
	"POST /tickets/views":                {"name", "query"},
	"POST /tickets/views/delete":         {"name"},
	"POST /tickets/:id/assign":           {"assignee"},
	"POST /tickets/:id/close":            nil,
	"POST /tickets/:id/reopen":           nil,
	"POST /tickets/:id/tasks":            {"index", "checked", "version"},
	"POST /tickets/:id/comments":         {"body"},
	"PATCH /tickets/:id/comments/:cid":   {"body"},
	"DELETE /tickets/:id/comments/:cid":  nil,
	"POST /tickets/:id/watch":            nil,
	"POST /tickets/:id/unwatch":          nil,
	"POST /inbox/read":                   {"up_to", "position"},
	"POST /inbox/email":                  {"email"},
	"POST /projects":                     {"slug", "name"},
	"POST /p/:slug/people":               {"person", "role"},
	"POST /p/:slug/people/revoke":        {"person"},
	"POST /p/:slug/everyone":             {"on"},
	"POST /p/:slug/invitations":          {"role", "note", "expires_in"},
	"POST /admin/invitations":            {"role", "note", "expires_in"},
	"POST /admin/invitations/:id/revoke": nil,
	"POST /admin/registration":           {"mode"},
	"POST /admin/roles":                  {"person", "action"},
	"POST /admin/rename":                 {"person", "username"},
	"POST /admin/claim":                  {"imported", "by"},
	// Custom fields, relations and templates (internal/fields).
	"POST /p/:slug/fields":                 {"name", "kind", "choices"},
	"POST /p/:slug/fields/remove":          {"name"},
	"POST /p/:slug/templates":              {"name", "body"},
	"POST /p/:slug/templates/remove":       {"name"},
	"POST /tickets/:id/fields":             {"field", "value", "version"},
	"POST /tickets/:id/relations":          {"kind", "other"},
	"POST /tickets/:id/relations/remove":   {"kind", "other"},
	"POST /p/:slug/tokens":                 {"name", "scopes", "expires", "expires_date"},
	"POST /p/:slug/webhooks":               {"url", "events"},
	"POST /p/:slug/webhooks/:id":           {"url", "events"},
	"POST /p/:slug/webhooks/:id/toggle":    {"on"},
	"POST /p/:slug/webhooks/:id/redeliver": {"position"},

	// Erasure (erase.go).
	"POST /admin/erase":                     {"scope", "target", "with_comments", "reason", "confirm"},
	"POST /tickets/:id/comments/:cid/erase": {"reason"},
}

// jsonBody lets a script send a command route a JSON object instead of a
// form (Content-Type: application/json): after routing, it reads the
// object into the request's form, so every handler reads JSON and forms
// the same way, and takes the Idempotency-Key header as the command id.
// A body that is not one JSON object is 400; an unknown field or a value
// of the wrong kind 422; an Idempotency-Key that is not 32 lowercase hex
// 422. Then the handler's 303 (its success) becomes 200 with the place
// it pointed to, for the routes whose handler has no JSON answer of its
// own. Routes not in jsonFields (passkeys read their own JSON) are left
// alone.
func jsonBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		allowed, known := jsonFields[r.Method+" "+c.Path()]
		if _, signedIn := web.CurrentUser(r.Context()); !known || !signedIn || !web.WantsJSON(c) {
			return next(c) // someone signed out is refused (401) before the body is looked at
		}
		form := url.Values{}
		if web.JSONBody(c) {
			var err error
			if form, err = readJSONForm(r, allowed); err != nil {
				return err
			}
		} else {
			for k, v := range r.PostForm {
				form[k] = v
			}
		}
		if key := r.Header.Get("Idempotency-Key"); key != "" {
			if !events.ValidID(key) {
				return errs.Field("Idempotency-Key", "The Idempotency-Key header is a command id: 32 lowercase hex digits; got %q.", key)
			}
			form.Set("command_id", key)
		} else if form.Get("command_id") == "" {
			form.Set("command_id", events.NewID())
		}
		r.PostForm = form
		r.Form = url.Values{}
		for k, v := range r.URL.Query() {
			r.Form[k] = v
		}
		for k, v := range form {
			r.Form[k] = append(r.Form[k], v...)
		}
		c.Response().Writer = &seeOtherJSON{ResponseWriter: c.Response().Writer, res: c.Response()}
		return next(c)
	}
}

// readJSONForm decodes one JSON object into form values: strings as they
// are, numbers as written, true and false as 1 and 0, null as absent;
// labels may also be an array of strings.
func readJSONForm(r *http.Request, allowed []string) (url.Values, error) {
	form := url.Values{}
	b, err := io.ReadAll(r.Body) // already capped by limitBody
	if err != nil {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "The request body could not be read.")
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	if len(bytes.TrimSpace(b)) == 0 {
		return form, nil // a command with nothing to say: close, reopen, watch
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "The body must be one JSON object, e.g. {\"title\": \"…\"}.")
	}
	fields := map[string]string{}
	for k, raw := range obj {
		if !contains(allowed, k) && k != "command_id" {
			fields[k] = "unknown field: this route takes " + orNone(allowed)
			continue
		}
		v, err := jsonValue(k, raw)
		if err != nil {
			fields[k] = err.Error()
			continue
		}
		if v != nil {
			form.Set(k, *v)
		}
	}
	if len(fields) > 0 {
		return nil, &errs.Error{Code: errs.Invalid, Message: "The JSON body has fields this route does not take, or values of the wrong kind.", Fields: fields}
	}
	return form, nil
}

func jsonValue(name string, raw json.RawMessage) (*string, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("not a JSON value")
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return &x, nil
	case json.Number:
		s := x.String()
		return &s, nil
	case bool:
		s := "0"
		if x {
			s = "1"
		}
		return &s, nil
	case []any:
		if name == "tickets" { // bulk: an array of ticket numbers
			parts := make([]string, len(x))
			for i, e := range x {
				n, ok := e.(json.Number)
				if !ok {
					return nil, fmt.Errorf("tickets is an array of ticket numbers")
				}
				parts[i] = n.String()
			}
			s := strings.Join(parts, ",")
			return &s, nil
		}
		if name != "labels" {
			break
		}
		parts := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok || strings.Contains(s, ",") {
				return nil, fmt.Errorf("labels is an array of strings without commas")
			}
			parts[i] = s
		}
		s := strings.Join(parts, ", ")
		return &s, nil
	}
	return nil, fmt.Errorf("want a string")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "no fields"
	}
	return strings.Join(list, ", ")
}

// seeOtherJSON turns a handler's 303 (success, for a browser) into 200
// and a JSON object naming where it pointed, for a script.
type seeOtherJSON struct {
	http.ResponseWriter
	res *echo.Response // so the request log and the metrics see the status sent
}

func (w *seeOtherJSON) WriteHeader(code int) {
	if code != http.StatusSeeOther {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	loc := w.Header().Get(echo.HeaderLocation)
	w.Header().Del(echo.HeaderLocation)
	w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSONCharsetUTF8)
	w.res.Status = http.StatusOK
	w.ResponseWriter.WriteHeader(http.StatusOK)
	b, _ := json.Marshal(map[string]any{"ok": true, "location": loc})
	n, _ := w.ResponseWriter.Write(append(b, '\n'))
	w.res.Size += int64(n)
}

func (w *seeOtherJSON) Unwrap() http.ResponseWriter { return w.ResponseWriter }
