package auth

import (
	"testing"
	"time"

	"braid/internal/errs"
)

func TestLimiterSlidingWindow(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	l := NewLimiter(3, 10*time.Minute)
	l.Now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if blocked, _ := l.Blocked("user:ada", "addr:1.2.3.4"); blocked {
			t.Fatalf("blocked after %d failures, want 3 allowed", i)
		}
		l.Fail("user:ada", "addr:1.2.3.4")
		now = now.Add(time.Minute)
	}
	blocked, wait := l.Blocked("user:ada")
	if !blocked || wait != 7*time.Minute {
		t.Fatalf("after 3 failures: blocked %v, wait %s; want true, 7m0s", blocked, wait)
	}
	if blocked, _ := l.Blocked("user:bob", "addr:1.2.3.4"); !blocked {
		t.Fatalf("another username from the same address: not blocked, want blocked per address")
	}
	if blocked, _ := l.Blocked("user:bob", "addr:5.6.7.8"); blocked {
		t.Fatalf("another username and address: blocked, want allowed")
	}
	now = now.Add(8 * time.Minute) // the first failure is now 11 minutes old
	if blocked, _ := l.Blocked("user:ada"); blocked {
		t.Fatalf("after the oldest failure left the window: still blocked")
	}
	l.Reset("user:ada")
	if blocked, _ := l.Blocked("user:ada"); blocked {
		t.Fatalf("after a reset: still blocked")
	}
}

func TestRegistrationValidate(t *testing.T) {
	cases := []struct {
		r     Registration
		field string
	}{
		{Registration{Username: "ab", Password: "12345678", Confirmation: "12345678"}, "username"},
		{Registration{Username: "Ada", Password: "12345678", Confirmation: "12345678"}, "username"},
		{Registration{Username: "ada", Password: "1234567", Confirmation: "1234567"}, "password"},
		{Registration{Username: "ada", Password: string(make([]byte, 73)), Confirmation: string(make([]byte, 73))}, "password"},
		{Registration{Username: "ada", Password: "12345678", Confirmation: "12345679"}, "password_confirmation"},
		{Registration{Username: "ada", DisplayName: "two\nlines", Password: "12345678", Confirmation: "12345678"}, "display_name"},
	}
	for _, c := range cases {
		if got := errs.Fields(c.r.Validate()); got[c.field] == "" {
			t.Fatalf("%q: field errors %v, want one on %s", c.r.Username, got, c.field)
		}
	}
	if err := (Registration{Username: "ada_l-1", Password: string(make([]byte, 72)), Confirmation: string(make([]byte, 72))}).Validate(); err != nil {
		t.Fatalf("72-byte password: %v, want valid", err)
	}
}
