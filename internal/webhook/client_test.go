package webhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestForbidden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want bool
	}{
		// Public.
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"93.184.216.34", false},
		{"100.63.255.255", false}, // just below CGNAT
		{"100.128.0.0", false},    // just above CGNAT
		{"172.15.255.255", false}, // just below 172.16/12
		{"172.32.0.0", false},     // just above
		{"11.0.0.1", false},
		{"2606:4700:4700::1111", false},
		{"2001:4860:4860::8888", false},
		{"::ffff:8.8.8.8", false},   // IPv4-mapped public
		{"64:ff9b::808:808", false}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", false},  // 6to4 of 8.8.8.8
		{"fe00::1", false},          // outside fe80::/10 and fc00::/7
		{"2a00:1450:4001:80b::200e", false},

		// Loopback.
		{"127.0.0.1", true},
		{"127.255.255.254", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		// Unspecified and "this network".
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"::", true},
		// RFC 1918.
		{"10.0.0.1", true},
		{"10.255.255.255", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"192.168.1.1", true},
		{"::ffff:10.1.2.3", true},
		{"::ffff:192.168.0.1", true},
		// Unique local.
		{"fc00::1", true},
		{"fd12:3456:789a::1", true},
		// Link-local, cloud metadata.
		{"169.254.169.254", true},
		{"169.254.0.1", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"::ffff:169.254.169.254", true},
		// CGNAT.
		{"100.64.0.1", true},
		{"100.127.255.255", true},
		// Multicast and broadcast.
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"255.255.255.255", true},
		{"ff02::1", true},
		{"ff05::2", true},
		// IPv4 inside IPv6 forms.
		{"::127.0.0.1", true},      // IPv4-compatible
		{"64:ff9b::7f00:1", true},  // NAT64 of 127.0.0.1
		{"64:ff9b::a00:1", true},   // NAT64 of 10.0.0.1
		{"2002:7f00:1::1", true},   // 6to4 of 127.0.0.1
		{"2002:c0a8:101::1", true}, // 6to4 of 192.168.1.1
		// Reserved and documentation.
		{"192.0.2.1", true},
		{"198.18.0.1", true},
		{"240.0.0.1", true},
		{"2001:db8::1", true},
	}
	for _, tc := range tests {
		a := netip.MustParseAddr(tc.addr)
		if got := Forbidden(a); got != tc.want {
			t.Errorf("Forbidden(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if !Forbidden(netip.Addr{}) {
		t.Errorf("Forbidden(zero Addr) = false, want true")
	}
}

func TestCheckDial(t *testing.T) {
	t.Parallel()
	tests := []struct {
		network, address string
		forbidden        bool // wraps ErrForbiddenAddress
		ok               bool
	}{
		{"tcp4", "8.8.8.8:443", false, true},
		{"tcp6", "[2606:4700:4700::1111]:443", false, true},
		{"tcp4", "127.0.0.1:80", true, false},
		{"tcp6", "[::1]:80", true, false},
		{"tcp6", "[::ffff:10.0.0.1]:80", true, false},
		{"tcp6", "[fe80::1%25eth0]:80", true, false},
		{"udp4", "8.8.8.8:53", false, false},
		{"tcp4", "example.com:80", false, false}, // never a name at this point
	}
	for _, tc := range tests {
		err := checkDial(tc.network, tc.address, nil)
		if (err == nil) != tc.ok || errors.Is(err, ErrForbiddenAddress) != tc.forbidden {
			t.Errorf("checkDial(%s, %s) = %v, want ok %v, forbidden %v", tc.network, tc.address, err, tc.ok, tc.forbidden)
		}
	}
}

// TestClientRefusesLoopback checks the client itself (the worker tests check
// it end to end): a receiver on 127.0.0.1 and on "localhost" gets no
// connection, and the error says why.
func TestClientRefusesLoopback(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := newClient(2*time.Second, false)
	_, port, _ := strings.Cut(srv.Listener.Addr().String(), "127.0.0.1:")
	for _, u := range []string{srv.URL, "http://localhost:" + port + "/", "http://[::ffff:127.0.0.1]:" + port + "/"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, u, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Errorf("POST %s: status %d, want an error", u, resp.StatusCode)
			continue
		}
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("POST %s: %v, want ErrForbiddenAddress", u, err)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("receiver saw %d connections, want 0", n)
	}
	// The same client allowed to: the receiver is reachable, which shows the
	// refusal above was the check and not the network.
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, nil)
	resp, err := newClient(2*time.Second, true).Do(req)
	if err != nil {
		t.Fatalf("POST %s with private addresses allowed: %v", srv.URL, err)
	}
	resp.Body.Close()
	if n := conns.Load(); n != 1 {
		t.Errorf("receiver saw %d connections, want 1", n)
	}
}

func TestClientNoProxyNoRedirect(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			hits.Add(1)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	// A proxy in the environment must be ignored: this one does not exist.
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	c := newClient(2*time.Second, true)
	// net/http reads the proxy environment once per process, so the request
	// below alone could miss a ProxyFromEnvironment.
	if tr, ok := c.Transport.(*http.Transport); !ok || tr.Proxy != nil {
		t.Errorf("client transport %T has a proxy function, want none", c.Transport)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/hook", strings.NewReader("{}"))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST /hook: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("POST /hook: status %d, want %d (redirect returned, not followed)", resp.StatusCode, http.StatusTemporaryRedirect)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("redirect target hit %d times, want 0", n)
	}
}
