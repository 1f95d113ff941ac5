package core

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/middleware"
)

// recordingResolver answers from a table and records every name asked. A
// name not in the table is not found.
type recordingResolver struct {
	table map[string][]netip.Addr

	mu    sync.Mutex
	asked []string
}

func (r *recordingResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	r.asked = append(r.asked, host)
	r.mu.Unlock()
	addrs, ok := r.table[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(addrs), nil
}

func (r *recordingResolver) lookups() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.asked)
}

// startProxyResolving is startProxy with res answering the names the
// engine resolves itself.
func startProxyResolving(t testing.TB, cfg *Config, res resolver) (*Runtime, string) {
	t.Helper()
	rt, err := NewRuntime(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	rt.resolver = res // before the first connection
	return rt, serveOn(t, rt, "127.0.0.1:0")
}

// A UDP datagram for a name the policy refuses is dropped without the name
// being looked up; an allowed name is looked up and then checked with its
// addresses.
func TestUDPDeniedNameNotResolved(t *testing.T) {
	echo := startUDPEcho(t, "127.0.0.1:0")
	res := &recordingResolver{table: map[string][]netip.Addr{
		"allowed.test": {netip.MustParseAddr("127.0.0.1")},
		"secret.test":  {netip.MustParseAddr("127.0.0.1")},
	}}
	rt, addr := startProxyResolving(t, testConfig(stage("test.auth"), stage("test.policy", "deny_names", []any{"secret.test"})), res)
	c := associate(t, addr, "bob", "127.0.0.1:0", false, middleware.ReplySucceeded)

	c.send(t, middleware.Target{Name: "secret.test", Port: echo.addr.Port()}, 0, "refused")
	waitFor(t, "the refusal to be counted", func() bool { return stat(rt, "udp_datagrams_dropped_policy") == 1 })
	if got := res.lookups(); len(got) != 0 {
		t.Fatalf("a refused name was looked up: %q", got)
	}
	if n := echo.received(); n != 0 {
		t.Fatalf("the refused name's address got %d datagrams", n)
	}

	c.exchange(t, middleware.Target{Name: "allowed.test", Port: echo.addr.Port()}, echo.addr, "allowed")
	if got := res.lookups(); !slices.Equal(got, []string{"allowed.test"}) {
		t.Fatalf("lookups %q, want only allowed.test", got)
	}
	// A name that is an IP literal involves no DNS: it is asked about
	// once, with its address.
	c.exchange(t, middleware.Target{Name: "127.0.0.1", Port: echo.addr.Port()}, echo.addr, "literal")
	q := rt.Snapshot().Stages[1].Middleware.(*testPolicy).questions()
	if want := []string{"secret.test/0", "allowed.test/0", "allowed.test/1", "127.0.0.1/1"}; !slices.Equal(q, want) {
		t.Fatalf("the policy was asked %q, want %q", q, want)
	}
}

// BIND naming a peer the policy refuses is refused (0x02) without the name
// being looked up; an allowed name is looked up, then checked with its
// addresses.
func TestBindDeniedNameNotResolved(t *testing.T) {
	res := &recordingResolver{table: map[string][]netip.Addr{
		"allowed.test": {netip.MustParseAddr("127.0.0.1")},
		"secret.test":  {netip.MustParseAddr("127.0.0.1")},
	}}
	rt, addr := startProxyResolving(t, testConfig(stage("test.auth"), stage("test.policy", "deny_names", []any{"secret.test"})), res)

	c, code, _ := bindRequest(t, addr, middleware.Target{Name: "secret.test", Port: 20})
	if code != middleware.ReplyNotAllowed {
		t.Fatalf("BIND secret.test: reply %v, want 0x02", code)
	}
	expectClosed(t, c)
	if got := res.lookups(); len(got) != 0 {
		t.Fatalf("a refused name was looked up: %q", got)
	}

	c, code, bound := bindRequest(t, addr, middleware.Target{Name: "allowed.test", Port: 20})
	if code != middleware.ReplySucceeded || !bound.Addr().IsLoopback() {
		t.Fatalf("BIND allowed.test: reply %v, BND %v", code, bound)
	}
	c.Close()
	if got := res.lookups(); !slices.Equal(got, []string{"allowed.test"}) {
		t.Fatalf("lookups %q, want only allowed.test", got)
	}
	q := rt.Snapshot().Stages[1].Middleware.(*testPolicy).questions()
	if want := []string{"secret.test/0", "allowed.test/0", "allowed.test/1"}; !slices.Equal(q, want) {
		t.Fatalf("the policy was asked %q, want %q", q, want)
	}
}
