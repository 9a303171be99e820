package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbiddenAddress is the cause of a delivery refused because its target
// resolved to an address a webhook may not reach (see Forbidden).
var ErrForbiddenAddress = errors.New("webhook: target address is not allowed")

// forbiddenError names the address that was refused.
type forbiddenError struct{ addr netip.Addr }

func (e *forbiddenError) Error() string {
	return fmt.Sprintf("address %s is not allowed for webhooks (loopback, private, link-local or reserved)", e.addr)
}

func (e *forbiddenError) Unwrap() error { return ErrForbiddenAddress }

// forbiddenPrefixes are the IPv4 and IPv6 ranges a webhook may not reach
// unless private targets are allowed: anything that is not the public
// internet, where the services imgd runs beside live.
var forbiddenPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network", includes the unspecified address
		"10.0.0.0/8",      // RFC 1918
		"100.64.0.0/10",   // CGNAT, RFC 6598
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, cloud metadata (169.254.169.254)
		"172.16.0.0/12",   // RFC 1918
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // TEST-NET-1
		"192.168.0.0/16",  // RFC 1918
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // TEST-NET-2
		"203.0.113.0/24",  // TEST-NET-3
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, includes broadcast
		"::/128",          // unspecified
		"::1/128",         // loopback
		"::/96",           // IPv4-compatible (deprecated)
		"64:ff9b:1::/48",  // local-use NAT64
		"100::/64",        // discard
		"2001:db8::/32",   // documentation
		"fc00::/7",        // unique local
		"fe80::/10",       // link-local
		"fec0::/10",       // site-local (deprecated)
		"ff00::/8",        // multicast
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// IPv6 ranges that carry an IPv4 address, judged by that address.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// Forbidden reports whether a webhook may not connect to addr: loopback,
// private (RFC 1918, fc00::/7), link-local, unspecified, multicast, CGNAT
// and other non-public ranges, including IPv4 addresses written as IPv6
// (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16), which are judged by
// the IPv4 address they carry.
func Forbidden(addr netip.Addr) bool {
	addr = addr.WithZone("")
	if !addr.IsValid() {
		return true
	}
	addr = addr.Unmap()
	if addr.Is6() {
		b := addr.As16()
		switch {
		case nat64.Contains(addr):
			return Forbidden(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(addr):
			return Forbidden(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	for _, p := range forbiddenPrefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// checkDial is the dialer's Control function: it sees the address the
// connection is about to be made to, after name resolution, so a name that
// resolves to a public address when checked and to a private one when used
// (DNS rebinding) is still refused.
func checkDial(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp4", "tcp6":
	default:
		return fmt.Errorf("webhook: network %s is not allowed", network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook: dial address %q: %w", address, err)
	}
	if Forbidden(ap.Addr()) {
		return &forbiddenError{addr: ap.Addr()}
	}
	return nil
}

// newClient returns the HTTP client of deliveries: no proxy (a proxy from
// the environment would make the connection-time check see the proxy's
// address instead of the target's), no redirects (a public receiver could
// redirect to a private address; the 3xx response is the result), no
// cookies, and the address check unless allowPrivate.
func newClient(timeout time.Duration, allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = checkDial
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
