package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// ErrRefused is wrapped by every connection the guard refuses.
var ErrRefused = errors.New("webhook destination refused")

// Guard decides which addresses and ports webhook connections may reach.
// The zero value is the production policy: public addresses, ports 80 and
// 443.
type Guard struct {
	// AllowPrivate lifts the address check (local development, tests).
	AllowPrivate bool
	// AllowedPorts are allowed besides 80 and 443.
	AllowedPorts []int
	// AnyPort lifts the port check.
	AnyPort bool
}

// blockedPrefixes are the ranges no webhook may reach: everything that is
// not a public unicast address, and cloud metadata services.
func blockedPrefixes() []netip.Prefix {
	list := []string{
		// IPv4
		"0.0.0.0/8",        // "this" network
		"10.0.0.0/8",       // private
		"100.64.0.0/10",    // CGNAT (and Alibaba's metadata 100.100.100.200)
		"127.0.0.0/8",      // loopback
		"169.254.0.0/16",   // link-local (AWS, GCP, Azure metadata 169.254.169.254)
		"172.16.0.0/12",    // private
		"192.0.0.0/24",     // IETF protocol assignments (Oracle metadata 192.0.0.192)
		"192.0.2.0/24",     // documentation
		"192.168.0.0/16",   // private
		"198.18.0.0/15",    // benchmarking
		"198.51.100.0/24",  // documentation
		"203.0.113.0/24",   // documentation
		"224.0.0.0/4",      // multicast
		"240.0.0.0/4",      // reserved, broadcast
		"168.63.129.16/32", // Azure wire server / metadata
		// IPv6
		"::/128",         // unspecified
		"::1/128",        // loopback
		"::ffff:0:0/96",  // IPv4-mapped
		"64:ff9b::/96",   // NAT64 (embeds IPv4)
		"64:ff9b:1::/48", // local NAT64
		"100::/64",       // discard
		"2001::/32",      // Teredo (embeds IPv4)
		"2001:db8::/32",  // documentation
		"2002::/16",      // 6to4 (embeds IPv4)
		"fc00::/7",       // unique local (AWS metadata fd00:ec2::254)
		"fe80::/10",      // link-local
		"fec0::/10",      // site-local (deprecated)
		"ff00::/8",       // multicast
	}
	out := make([]netip.Prefix, len(list))
	for i, s := range list {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// checkAddr refuses an address a webhook may not reach.
func (g Guard) checkAddr(a netip.Addr) error {
	if g.AllowPrivate {
		return nil
	}
	if a.Is4In6() {
		return fmt.Errorf("%w: IPv4-mapped address %s", ErrRefused, a)
	}
	a = a.WithZone("")
	for _, p := range blockedPrefixes() {
		if p.Contains(a) {
			return fmt.Errorf("%w: address %s is not public (%s)", ErrRefused, a, p)
		}
	}
	if !a.IsGlobalUnicast() {
		return fmt.Errorf("%w: address %s is not public", ErrRefused, a)
	}
	return nil
}

func (g Guard) checkPort(port string) error {
	if g.AnyPort {
		return nil
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("%w: port %q", ErrRefused, port)
	}
	if n == 80 || n == 443 || slices.Contains(g.AllowedPorts, n) {
		return nil
	}
	return fmt.Errorf("%w: port %d is not allowed (80 and 443 are)", ErrRefused, n)
}

// Check refuses a resolved "ip:port" destination the guard does not allow.
func (g Guard) Check(network, address string) error {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: address %q: %v", ErrRefused, address, err)
	}
	if err := g.checkPort(port); err != nil {
		return err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address", ErrRefused, host)
	}
	return g.checkAddr(a)
}

// Control is a net.Dialer Control function: it runs after DNS resolution,
// on the very address being connected to, so a name that resolves (or
// re-resolves, DNS rebinding) to an internal address is refused.
func (g Guard) Control(network, address string, _ syscall.RawConn) error {
	return g.Check(network, address)
}

// Dialer is a net.Dialer that refuses what the guard does not allow.
func (g Guard) Dialer() *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: g.Control}
}

// DialContext checks literal addresses and the port before resolving, then
// dials with the guarded dialer (which checks each resolved address).
func (g Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("%w: address %q: %v", ErrRefused, address, err)
	}
	if err := g.checkPort(port); err != nil {
		return nil, err
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if err := g.checkAddr(a); err != nil {
			return nil, err
		}
	}
	return g.Dialer().DialContext(ctx, network, address)
}

// excerptLimit is how much of an answer is read and kept.
const excerptLimit = 4 << 10

// NewClient returns the HTTP client deliveries use: connections through the
// guard, no proxy (proxy environment variables are ignored), no redirects
// followed (a 3xx is the answer), a whole-exchange timeout, no transparent
// decompression.
func NewClient(g Guard, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            g.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  timeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
