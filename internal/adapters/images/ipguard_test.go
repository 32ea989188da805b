package images

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

func TestIsDisallowedIP(t *testing.T) {
	tests := []struct {
		ip         string
		disallowed bool
	}{
		// Loopback.
		{"127.0.0.1", true},
		{"127.255.255.254", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true}, // IPv4-mapped
		// Private (RFC 1918, ULA).
		{"10.0.0.1", true},
		{"10.255.255.255", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"192.168.1.1", true},
		{"fc00::1", true},
		{"fd12:3456::1", true},
		{"::ffff:10.0.0.1", true},
		// Link-local, including the cloud metadata endpoint.
		{"169.254.169.254", true},
		{"169.254.0.1", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"::ffff:169.254.169.254", true},
		{"fd00:ec2::254", true}, // AWS IMDS over IPv6 (ULA)
		// Unspecified.
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"::", true},
		// Multicast / broadcast.
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"255.255.255.255", true},
		{"ff02::1", true},
		{"ff0e::1", true},
		// CGNAT and other special-purpose ranges.
		{"100.64.0.1", true},
		{"100.127.255.255", true},
		{"192.0.0.1", true},
		{"192.0.2.1", true},
		{"198.18.0.1", true},
		{"198.51.100.1", true},
		{"203.0.113.1", true},
		{"240.0.0.1", true},
		{"2001:db8::1", true},
		{"fec0::1", true},
		{"::127.0.0.1", true}, // IPv4-compatible
		// IPv4 embedded in NAT64 / 6to4 / Teredo.
		{"64:ff9b::10.0.0.1", true},
		{"64:ff9b::a9fe:a9fe", true}, // 169.254.169.254
		{"2002:0a00:0001::1", true},  // 6to4 of 10.0.0.1
		{"2002:7f00:0001::1", true},  // 6to4 of 127.0.0.1
		{"2001:0:4136:e378::1", true},
		// Public addresses.
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"100.63.255.255", false},
		{"100.128.0.0", false},
		{"172.15.255.255", false},
		{"172.32.0.0", false},
		{"169.253.255.255", false},
		{"::ffff:8.8.8.8", false},
		{"64:ff9b::8.8.8.8", false},
		{"2002:0808:0808::1", false},
		{"2606:4700:4700::1111", false},
		{"2001:4860:4860::8888", false},
	}
	for _, tc := range tests {
		t.Run(tc.ip, func(t *testing.T) {
			ip := netip.MustParseAddr(tc.ip)
			if got := isDisallowedIP(ip); got != tc.disallowed {
				t.Fatalf("isDisallowedIP(%s) = %v, want %v", tc.ip, got, tc.disallowed)
			}
		})
	}
	if !isDisallowedIP(netip.Addr{}) {
		t.Fatal("the zero Addr must be disallowed")
	}
}

// TestControlRejectsBeforeConnect dials non-public addresses through the
// Loader's real dialer. The Control hook runs after socket(2) and before
// connect(2), so a *blockedAddrError proves no packet was sent. As a
// belt-and-braces guard, if the production hook ever let one of these
// through, the wrapper below refuses the connection itself (and fails the
// test), so this test never generates traffic to non-loopback addresses.
func TestControlRejectsBeforeConnect(t *testing.T) {
	l := New(Options{FetchRemote: true})
	var checked []string
	l.dialer.Control = func(network, address string, c syscall.RawConn) error {
		checked = append(checked, address)
		if err := l.control(network, address, c); err != nil {
			return err
		}
		t.Errorf("Control allowed %s %s", network, address)
		return errors.New("test guard: refusing connection")
	}
	for _, addr := range []string{
		"169.254.169.254:80",
		"10.0.0.1:80",
		"172.16.0.1:443",
		"192.168.0.1:80",
		"100.64.0.1:80",
		"0.0.0.0:80",
		"127.0.0.1:1",
		"[::1]:1",
		"[fd00:ec2::254]:80",
		"[fe80::1]:80",
		"[::ffff:10.0.0.1]:80",
	} {
		t.Run(addr, func(t *testing.T) {
			checked = nil
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			start := time.Now()
			conn, err := l.dialer.DialContext(ctx, "tcp", addr)
			if conn != nil {
				conn.Close()
				t.Fatal("dial succeeded")
			}
			var be *blockedAddrError
			if !errors.As(err, &be) {
				// Some sandboxes have no route for IPv6 link-local and
				// fail before Control; that is still no connection.
				var oe *net.OpError
				if len(checked) == 0 && errors.As(err, &oe) {
					t.Skipf("dial failed before Control (no route): %v", err)
				}
				t.Fatalf("want blockedAddrError from Control, got %T: %v", err, err)
			}
			if len(checked) != 1 {
				t.Fatalf("Control consulted for %v, want exactly the one address", checked)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("rejection took %v; it should be immediate", d)
			}
		})
	}
}

func TestControlAllowsPrivateWhenConfigured(t *testing.T) {
	l := New(Options{FetchRemote: true, AllowPrivate: true})
	for _, addr := range []string{"127.0.0.1:80", "[::1]:80", "10.0.0.1:80", "169.254.169.254:80"} {
		if err := l.control("tcp4", addr, nil); err != nil {
			t.Errorf("control(%s) with AllowPrivate = %v, want nil", addr, err)
		}
	}
	// Never anything but TCP, and never unparsable addresses.
	for _, tc := range []struct{ network, addr string }{
		{"udp4", "8.8.8.8:53"},
		{"tcp4", "example.com:80"},
		{"tcp4", "8.8.8.8"},
		{"tcp4", "8.8.8.8:http"},
	} {
		if err := l.control(tc.network, tc.addr, nil); err == nil {
			t.Errorf("control(%s, %s) = nil, want error", tc.network, tc.addr)
		}
	}
	pub := New(Options{FetchRemote: true})
	if err := pub.control("tcp6", "[2606:4700:4700::1111]:443", nil); err != nil {
		t.Errorf("public IPv6 refused: %v", err)
	}
	if err := pub.control("tcp4", "8.8.8.8:443", nil); err != nil {
		t.Errorf("public IPv4 refused: %v", err)
	}
}
