package erase

import (
	"strings"
	"testing"

	"braid/internal/errs"
)

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name  string
		r     Request
		field string // "" when valid
	}{
		{"comment", Request{Scope: Comment, Target: "12/3", Reason: "a phone number"}, ""},
		{"comment with #", Request{Scope: Comment, Target: "12#3", Reason: "x"}, ""},
		{"ticket", Request{Scope: Ticket, Target: "12", WithComments: true, Reason: "x"}, ""},
		{"person", Request{Scope: Person, Target: "bob", Reason: "x"}, ""},
		{"no scope", Request{Target: "1", Reason: "x"}, "scope"},
		{"bad comment", Request{Scope: Comment, Target: "12", Reason: "x"}, "target"},
		{"zero ticket", Request{Scope: Ticket, Target: "0", Reason: "x"}, "target"},
		{"with comments on a person", Request{Scope: Person, Target: "bob", WithComments: true, Reason: "x"}, "with_comments"},
		{"no reason", Request{Scope: Ticket, Target: "1", Reason: "  "}, "reason"},
		{"long reason", Request{Scope: Ticket, Target: "1", Reason: strings.Repeat("é", MaxReason+1)}, "reason"},
		{"control character", Request{Scope: Ticket, Target: "1", Reason: "a\x07b"}, "reason"},
		{"reason at the limit", Request{Scope: Ticket, Target: "1", Reason: strings.Repeat("é", MaxReason)}, ""},
	} {
		err := c.r.Validate()
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if errs.Code(err) != errs.Invalid || errs.Fields(err)[c.field] == "" {
			t.Errorf("%s: got %v (fields %v), want invalid naming %s", c.name, err, errs.Fields(err), c.field)
		}
	}
}

func TestKept(t *testing.T) {
	got, err := Kept("user_registered", []byte(`{"username":"bob","display_name":"Bob Smith"}`))
	if err != nil || string(got) != `{}` {
		t.Fatalf("Kept(user_registered) = %s, %v; want {}", got, err)
	}
	got, err = Kept("token_created", []byte(`{"token":"t1","name":"Bob's laptop","scopes":["read"],"expires_at":"x"}`))
	if err != nil || strings.Contains(string(got), "laptop") || !strings.Contains(string(got), `"token":"t1"`) {
		t.Fatalf("Kept(token_created) = %s, %v", got, err)
	}
}
