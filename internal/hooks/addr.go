package hooks

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"braid/internal/errs"
)

// Private says whether ip is one a webhook may not reach unless the site
// allows private addresses: loopback, private (RFC 1918, fc00::/7),
// link-local, unspecified, multicast, CGNAT, and IPv4 mapped in IPv6.
func Private(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || !ip.IsValid() ||
		cgnat.Contains(ip) || thisNet.Contains(ip) || broadcast == ip
}

var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10")
	thisNet   = netip.MustParsePrefix("0.0.0.0/8")
	broadcast = netip.MustParseAddr("255.255.255.255")
)

// CheckURL refuses an address a webhook may not send to: not http or
// https, with a user or password in it, or whose host resolves (now) to a
// private address when allowPrivate is false. The deliverer checks the
// address it connects to again, each time.
func CheckURL(ctx context.Context, raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return errs.Field("url", "The address must be an http:// or https:// URL, such as https://ci.example.org/braid.")
	}
	if u.User != nil {
		return errs.Field("url", "Put no user name or password in the address; check the signature instead.")
	}
	if u.Fragment != "" {
		return errs.Field("url", "The address may not have a #fragment.")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if Private(ip) {
			return errs.Field("url", "%s is a private or loopback address; webhooks may only reach public ones.", host)
		}
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return errs.Field("url", "The host %s could not be found.", host)
	}
	for _, ip := range ips {
		if Private(ip) {
			return errs.Field("url", "%s resolves to a private or loopback address (%s); webhooks may only reach public ones.", host, ip.Unmap())
		}
	}
	return nil
}

// errPrivate is the dialer's refusal.
type errPrivate struct{ addr string }

func (e *errPrivate) Error() string { return "refused to connect to private address " + e.addr }

// control refuses, at connect time, an address that is private: the name
// may resolve differently than when the webhook was made.
func control(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || Private(ap.Addr()) {
			return &errPrivate{address}
		}
		return nil
	}
}
