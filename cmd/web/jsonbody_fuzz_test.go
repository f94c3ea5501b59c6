package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// FuzzJSONForm: whatever a script sends, readJSONForm either refuses it
// or yields only the route's fields (and the command id), never panics.
func FuzzJSONForm(f *testing.F) {
	for _, s := range []string{`{"title":"x","labels":["a","b"]}`, `{"title":1e999}`, `{"labels":[1]}`, `[]`, `{"title":null}`,
		`{"title":"x"}{"title":"y"}`, `{"version":12345678901234567890}`, `{"__proto__":{}}`, `{"title":"\ud800"}`, ``} {
		f.Add(s)
	}
	allowed := jsonFields["POST /tickets"]
	f.Fuzz(func(t *testing.T, body string) {
		r, err := http.NewRequest("POST", "/tickets", strings.NewReader(body))
		if err != nil {
			t.Skip()
		}
		form, err := readJSONForm(r, allowed)
		if err != nil {
			return
		}
		for k := range form {
			if !slices.Contains(allowed, k) && k != "command_id" {
				t.Errorf("body %q gave field %q, not one of %v", body, k, allowed)
			}
		}
	})
}
