package hooks

import (
	"context"
	"net/netip"
	"net/url"
	"testing"
)

// FuzzCheckURL: an accepted webhook address is http(s), has a host, no
// credentials and no fragment, and (IP literals) is never private. Host
// names are not looked up here (no DNS in tests): only IP literals and
// refusals are judged.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://1.1.1.1/x", "http://127.0.0.1/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://0x7f.1/",
		"http://user:pw@8.8.8.8/", "https://8.8.8.8/#frag", "ftp://8.8.8.8/", "http://169.254.169.254/latest", "http://100.64.1.1/", "//8.8.8.8/", "http:///x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, perr := url.Parse(raw)
		if perr == nil && u.Host != "" {
			if _, err := netip.ParseAddr(u.Hostname()); err != nil {
				t.Skip() // a name: would need DNS
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // never wait on a resolver
		if err := CheckURL(ctx, raw, false); err != nil {
			return
		}
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Fragment != "" {
			t.Fatalf("accepted %q", raw)
		}
		ip, err := netip.ParseAddr(u.Hostname())
		if err != nil || Private(ip) {
			t.Fatalf("accepted %q (host %q)", raw, u.Hostname())
		}
	})
}
