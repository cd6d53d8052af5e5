package webhook_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iacc/iacc/worker/webhook"
)

// Internal destinations are refused at connect time, on the resolved
// address. The Control function is called with the addresses directly (no
// connection is attempted to anything but loopback).
func TestGuardRefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	prod := webhook.Guard{}
	for _, addr := range []string{
		"127.0.0.1:443", "127.8.9.10:80", "10.0.0.1:443", "172.16.5.4:443", "192.168.1.1:80", "100.64.0.1:443",
		"169.254.169.254:80", "100.100.100.200:80", "168.63.129.16:80", "0.0.0.0:443",
		"[::1]:443", "[::ffff:127.0.0.1]:443", "[::ffff:8.8.8.8]:443", "[fd00:ec2::254]:80", "[fe80::1]:443", "[::]:443",
		"[64:ff9b::a00:1]:443", "[2002:a00:1::]:443",
	} {
		err := prod.Control("tcp", addr, nil)
		if !errors.Is(err, webhook.ErrRefused) {
			t.Errorf("Control(%s) = %v, want ErrRefused", addr, err)
		}
		if err := (webhook.Guard{AllowPrivate: true}).Control("tcp", addr, nil); err != nil {
			t.Errorf("Control(%s) with private delivery allowed = %v, want nil", addr, err)
		}
	}
	for _, addr := range []string{"93.184.216.34:443", "93.184.216.34:80", "[2606:2800:220:1:248:1893:25c8:1946]:443"} {
		if err := prod.Control("tcp", addr, nil); err != nil {
			t.Errorf("Control(%s) = %v, want a public address allowed", addr, err)
		}
	}
	// Ports other than 80 and 443 only when allowed.
	if err := prod.Control("tcp", "93.184.216.34:8080", nil); !errors.Is(err, webhook.ErrRefused) {
		t.Errorf("port 8080: %v, want ErrRefused", err)
	}
	if err := (webhook.Guard{AllowedPorts: []int{8080}}).Control("tcp", "93.184.216.34:8080", nil); err != nil {
		t.Errorf("allowed port 8080: %v", err)
	}
	if err := (webhook.Guard{AllowPrivate: true}).Control("tcp", "127.0.0.1:8080", nil); !errors.Is(err, webhook.ErrRefused) {
		t.Errorf("private delivery allowed still checks ports: %v, want ErrRefused", err)
	}
}

// DialContext refuses loopback destinations, given literally or by a name
// that resolves to them ("localhost": the check runs after DNS), and lets
// them through when private delivery is allowed.
func TestGuardDialContext(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	anyPort := webhook.Guard{AnyPort: true}
	for _, addr := range []string{"127.0.0.1:" + port, "[::1]:" + port, "[::ffff:127.0.0.1]:" + port, "localhost:" + port} {
		conn, err := anyPort.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			t.Errorf("DialContext(%s) connected, want refused", addr)
			continue
		}
		if !errors.Is(err, webhook.ErrRefused) {
			t.Errorf("DialContext(%s) = %v, want ErrRefused", addr, err)
		}
	}
	// "localhost" is refused by the resolved address, which the error names.
	_, err := anyPort.DialContext(ctx, "tcp", "localhost:"+port)
	if err == nil || !(strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(err.Error(), "::1")) {
		t.Errorf("DialContext(localhost) = %v, want a refusal naming the resolved loopback address", err)
	}
	// Port refused before any resolution.
	if _, err := (webhook.Guard{AllowPrivate: true}).DialContext(ctx, "tcp", "localhost:"+port); !errors.Is(err, webhook.ErrRefused) {
		t.Errorf("DialContext to port %s without it allowed = %v, want ErrRefused", port, err)
	}

	open := webhook.Guard{AllowPrivate: true, AnyPort: true}
	conn, err := open.DialContext(ctx, "tcp", "localhost:"+port)
	if err != nil {
		t.Fatalf("DialContext(localhost) with private delivery allowed: %v", err)
	}
	conn.Close()

	// The delivery client: refused before any byte reaches the server, no
	// proxy from the environment, redirects not followed.
	c := webhook.NewClient(anyPort, 2*time.Second)
	if tr, ok := c.Transport.(*http.Transport); !ok || tr.Proxy != nil {
		t.Error("the webhook client uses a proxy function; proxy environment variables must be ignored")
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader("{}"))
	if res, err := c.Do(req); err == nil {
		res.Body.Close()
		t.Error("client reached a loopback server")
	} else if !errors.Is(err, webhook.ErrRefused) {
		t.Errorf("client error = %v, want ErrRefused", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server got %d requests through refused connections", n)
	}
}
