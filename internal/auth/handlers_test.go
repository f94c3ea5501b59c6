package auth

import "testing"

func TestSafeNext(t *testing.T) {
	cases := []struct{ next, want string }{
		{"/tickets/new", "/tickets/new"},
		{"/ok?x=1", "/ok?x=1"},
		{"/tickets?status=all&q=a%20b", "/tickets?status=all&q=a%20b"},
		{"/tickets#top", "/tickets"},
		{"", ""},
		{"tickets", ""},
		{"/%09/evil.example/", ""},
		{"/\t/evil", ""},
		{"/\n/evil", ""},
		{"/\\evil", ""},
		{"/%5Cevil", ""},
		{"\\\\evil", ""},
		{"//evil", ""},
		{"//evil.example/x", ""},
		{"/%2F%2Fevil", ""},
		{"/%2Fevil", ""},
		{"/a//b", ""},
		{"https://evil", ""},
		{"https://evil.example/x", ""},
		{"javascript:alert(1)", ""},
		{"/javascript:alert(1)", "/javascript:alert(1)"},
		{"/%00", ""},
		{"/\x7f", ""},
		{"/\u0085evil", ""},
		{"/\xff", ""},
		{"/%zz", ""},
		{"/" + string(make([]byte, 3000)), ""},
	}
	for _, c := range cases {
		if got := safeNext(c.next); got != c.want {
			t.Errorf("safeNext(%q): got %q, want %q", c.next, got, c.want)
		}
	}
}
