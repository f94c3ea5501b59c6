package auth

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"braid/internal/errs"
)

func TestLimiterWindows(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	l := NewLimiter(100)
	l.Now = func() time.Time { return now }
	rule := Rule{Max: 3, Window: 9 * time.Minute} // 3 at once, then one every 3m
	ada, bob := Limit{KeyOf("u", "ada"), rule}, Limit{KeyOf("u", "bob"), rule}
	for i := 0; i < 3; i++ {
		if _, _, ok := l.Reserve(ada); !ok {
			t.Fatalf("attempt %d refused, want 3 allowed", i+1)
		}
	}
	_, wait, ok := l.Reserve(ada)
	if ok || wait != 3*time.Minute {
		t.Fatalf("4th attempt: allowed %v, wait %s; want refused, 3m0s", ok, wait)
	}
	// All or nothing: a refused limit takes nothing from the others.
	if _, _, ok := l.Reserve(bob, ada); ok {
		t.Fatalf("bob and ada together: allowed, want refused by ada's limit")
	}
	for i := 0; i < 3; i++ {
		if _, _, ok := l.Reserve(bob); !ok {
			t.Fatalf("bob's attempt %d refused after a refused joint one; it took an attempt from him", i+1)
		}
	}
	// A success gives its attempt back.
	now = now.Add(3 * time.Minute)
	r, _, ok := l.Reserve(ada)
	if !ok {
		t.Fatalf("3 minutes later: refused, want one attempt back")
	}
	if _, _, ok := l.Reserve(ada); ok {
		t.Fatalf("second attempt 3 minutes later: allowed, want refused")
	}
	r.Cancel()
	if _, _, ok := l.Reserve(ada); !ok {
		t.Fatalf("after a cancelled attempt: refused, want it given back")
	}
	// Keys that have all their attempts again are pruned.
	if n := l.Len(); n != 2 {
		t.Fatalf("keys: got %d, want 2", n)
	}
	now = now.Add(10 * time.Minute)
	l.Reserve(Limit{KeyOf("u", "cy"), rule})
	if n := l.Len(); n != 1 {
		t.Fatalf("keys after the window passed: got %d, want 1 (ada and bob pruned)", n)
	}
	l.Forget(KeyOf("u", "cy"))
	if n := l.Len(); n != 0 {
		t.Fatalf("keys after Forget: got %d, want 0", n)
	}
}

func TestLimiterReserveIsAtomic(t *testing.T) {
	l := NewLimiter(100)
	lim := Limit{KeyOf("u", "ada"), Rule{Max: 5, Window: time.Hour}}
	var wg sync.WaitGroup
	var allowed atomic.Int32
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, ok := l.Reserve(lim); ok {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != 5 {
		t.Fatalf("parallel attempts allowed: got %d, want 5", n)
	}
}

func TestSignInLimits(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	l := NewLimiter(DefaultLimiterCap)
	l.Now = func() time.Time { return now }
	fail := func(user, addr string) bool {
		_, _, ok := l.Reserve(signInLimits(user, addr)...)
		return ok
	}
	for i := 0; i < 5; i++ {
		if !fail("ada", "192.0.2.1") {
			t.Fatalf("failure %d from one address refused, want 5 allowed", i+1)
		}
	}
	if fail("ada", "192.0.2.1") {
		t.Fatalf("6th try for ada from the same address: allowed, want refused")
	}
	if !fail("ada", "198.51.100.7") {
		t.Fatalf("ada from another address: refused, want allowed (the owner is not locked out)")
	}
	// Per address, across usernames: 30, then the address waits.
	for i := 0; i < 25; i++ { // 5 counted already for 192.0.2.1
		if !fail(fmt.Sprintf("user%d", i), "192.0.2.1") {
			t.Fatalf("username %d from one address refused, want 30 allowed in all", i)
		}
	}
	if fail("zed", "192.0.2.1") {
		t.Fatalf("31st try from one address: allowed, want refused")
	}
	// Per username from anywhere: a much higher ceiling, still a ceiling.
	for i := 0; i < 100; i++ {
		if !fail("bob", fmt.Sprintf("203.0.113.%d", i)) {
			t.Fatalf("distributed try %d refused, want 100 allowed", i+1)
		}
	}
	if fail("bob", "203.0.113.200") {
		t.Fatalf("101st try for bob from a fresh address: allowed, want refused")
	}
	// One IPv6 host holds a whole /64.
	for i := 0; i < 5; i++ {
		fail("cy", fmt.Sprintf("2001:db8::%x", i))
	}
	if fail("cy", "2001:db8::ffff") {
		t.Fatalf("6th try from the same IPv6 /64: allowed, want refused")
	}
}

func TestLimiterCap(t *testing.T) {
	l := NewLimiter(10)
	for i := 0; i < 100; i++ {
		if _, _, ok := l.Reserve(Limit{KeyOf(fmt.Sprint(i)), Rule{Max: 5, Window: time.Hour}}); !ok {
			t.Fatalf("new key %d refused", i)
		}
		if n := l.Len(); n > 10 {
			t.Fatalf("after %d keys: %d remembered, want at most 10", i+1, n)
		}
	}
}

// 10,000 distinct 900 KB usernames leave the limiter small: keys are
// fixed-size hashes and no username is kept.
func TestLimiterMemoryHugeUsernames(t *testing.T) {
	l := NewLimiter(DefaultLimiterCap)
	buf := []byte(strings.Repeat("x", 900<<10))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 10_000; i++ {
		// Distinct at the start, as a username is hashed. Every 100th is a
		// fresh copy (90 MB in all), so a limiter holding on to usernames
		// would show; the others reuse one buffer to keep the test quick.
		copy(buf, fmt.Sprintf("%06d", i))
		name := unsafe.String(&buf[0], len(buf))
		if i%100 == 0 {
			name = string(buf)
		}
		lims := signInLimits(name, "192.0.2.1")
		l.Reserve(lims[0], lims[2]) // not the address's limit: it would stop at 30
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := l.Len(); n > DefaultLimiterCap || n < 10_000 {
		t.Fatalf("keys: got %d, want between 10,000 and the cap %d", n, DefaultLimiterCap)
	}
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 16<<20 {
		t.Fatalf("the heap grew by %d MB for 10,000 huge usernames, want under 16 MB", grew>>20)
	}
	runtime.KeepAlive(buf)
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
