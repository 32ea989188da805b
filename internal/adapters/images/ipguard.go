package images

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// Address ranges that a remote image fetch must never reach unless
// Options.AllowPrivate is set. Loopback, RFC 1918 / fc00::/7, link-local,
// multicast and the unspecified addresses are covered by netip predicates in
// isDisallowedIP; this table adds the special-purpose ranges those miss.
var disallowedPrefixes = []netip.Prefix{
	// IPv4 (IANA special-purpose registry; anything not globally reachable).
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT shared address space
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("192.88.99.0/24"),  // deprecated 6to4 relay anycast
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, incl. 255.255.255.255 broadcast
	netip.MustParsePrefix("::/96"),           // deprecated IPv4-compatible IPv6 (::a.b.c.d)
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001::/32"),       // Teredo (embeds an obfuscated IPv4)
	netip.MustParsePrefix("2001:2::/48"),     // benchmarking
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2001:10::/28"),    // ORCHID (deprecated)
	netip.MustParsePrefix("2001:20::/28"),    // ORCHIDv2
	netip.MustParsePrefix("3fff::/20"),       // documentation (RFC 9637)
	netip.MustParsePrefix("5f00::/16"),       // SRv6 SIDs
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96") // well-known NAT64, embeds IPv4 in the low 32 bits
	sixToFour   = netip.MustParsePrefix("2002::/16")    // 6to4, embeds IPv4 in bits 16..47
)

// isDisallowedIP reports whether ip is not a public unicast address, i.e.
// whether a fetch to it must be refused unless private targets are allowed.
// It covers loopback (127/8, ::1), private (RFC 1918, fc00::/7), link-local
// (169.254/16 incl. the 169.254.169.254 metadata endpoint, fe80::/10),
// unspecified, multicast, CGNAT (100.64/10) and the other special-purpose
// ranges in disallowedPrefixes. IPv4-mapped (::ffff:a.b.c.d), NAT64 and 6to4
// addresses are judged by the IPv4 address they embed. The invalid zero Addr
// is disallowed.
func isDisallowedIP(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64Prefix.Contains(ip):
			return isDisallowedIP(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		case sixToFour.Contains(ip):
			return isDisallowedIP(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
		}
	}
	if ip.IsUnspecified() || ip.IsLoopback() || ip.IsPrivate() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() {
		return true
	}
	for _, p := range disallowedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// blockedAddrError is returned by the dialer's Control function when the
// address about to be connected to is refused. Control runs after the socket
// is created but before connect(2), so no packet is sent to a refused address.
type blockedAddrError struct {
	addr string
}

func (e *blockedAddrError) Error() string {
	return fmt.Sprintf("images: refusing to connect to non-public address %s", e.addr)
}

// control is the net.Dialer Control hook. It sees the IP actually being
// dialled (after DNS resolution), so a host name that resolves — or is
// re-bound — to a private address is refused at connect time.
func (l *Loader) control(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp4", "tcp6":
	default:
		return &blockedAddrError{addr: network + " " + address}
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return &blockedAddrError{addr: address}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return &blockedAddrError{addr: address}
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return &blockedAddrError{addr: address}
	}
	if !l.permitted(netip.AddrPortFrom(ip.WithZone("").Unmap(), uint16(p))) {
		return &blockedAddrError{addr: address}
	}
	return nil
}

// permitted applies the address policy: everything when AllowPrivate is set,
// otherwise only public addresses. Tests may override it via l.permit.
func (l *Loader) permitted(ap netip.AddrPort) bool {
	if l.permit != nil {
		return l.permit(ap)
	}
	return l.opts.AllowPrivate || !isDisallowedIP(ap.Addr())
}
