package filter_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socks5d/socks5d/builtin/filter"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// fakeResolver answers from a table and records the names asked. A name
// not in the table is not found.
type fakeResolver struct {
	table map[string][]string
	err   error // returned for every lookup when set

	mu    sync.Mutex
	asked []string
}

func (r *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	r.asked = append(r.asked, network+" "+host)
	r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	addrs, ok := r.table[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

func (r *fakeResolver) lookups() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.asked)
}

// fakeDialer stands in for the network: it records the addresses dialed,
// refuses those in refuse and connects the others to an in-memory pipe.
type fakeDialer struct {
	refuse map[string]bool

	mu        sync.Mutex
	dialed    []string
	deadlines []time.Duration // time left on each attempt's ctx, -1 for none
}

func (d *fakeDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.dialed = append(d.dialed, address)
	left := time.Duration(-1)
	if dl, ok := ctx.Deadline(); ok {
		left = time.Until(dl)
	}
	d.deadlines = append(d.deadlines, left)
	d.mu.Unlock()
	if d.refuse[address] {
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	c, other := net.Pipe()
	other.Close()
	return c, nil
}

func (d *fakeDialer) addresses() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.dialed)
}

// outcome is what the scripted engine saw.
type outcome struct {
	reply middleware.Reply
	err   error
}

func name(host string, port uint16) middleware.Target {
	return middleware.Target{Name: host, Port: port}
}

func addr(a string, port uint16) middleware.Target {
	return middleware.Target{Addr: netip.MustParseAddr(a), Port: port}
}

// serve runs one basic user's CONNECT to target through mw over a fake
// inner dialer.
func serve(t *testing.T, mw middleware.Middleware, d middleware.Dialer, target middleware.Target) outcome {
	t.Helper()
	return serveAs(t, mw, d, "carol", middleware.RoleBasic, target)
}

func serveAs(t *testing.T, mw middleware.Middleware, d middleware.Dialer, user string, role middleware.Role, target middleware.Target) outcome {
	t.Helper()
	s, _ := mwtest.Session(t)
	s.Dialer = d
	err := mwtest.Serve(context.Background(), mw, connect(user, role, target), s)
	return outcome{reply: s.Reply, err: err}
}

// connect is the engine serving a CONNECT once the handshake is over.
func connect(user string, role middleware.Role, target middleware.Target) *mwtest.Connect {
	return &mwtest.Connect{Target: target, User: user, Role: role}
}

// loopbackPolicy denies the proxy host's own loopback and link-local
// ranges to everyone but admins, as configs/proxy.yaml suggests.
var loopbackPolicy = map[string]any{"rules": rules(
	map[string]any{"action": "allow", "roles": []any{"admin"},
		"dest": []any{"0.0.0.0/8", "127.0.0.0/8", "::/128", "::1/128", "169.254.0.0/16", "fe80::/10", "localhost"}},
	map[string]any{"action": "deny",
		"dest": []any{"0.0.0.0/8", "127.0.0.0/8", "::/128", "::1/128", "169.254.0.0/16", "fe80::/10", "localhost"}},
)}

func wantDenied(t *testing.T, out outcome, rule int, deniedAddr string) {
	t.Helper()
	if out.reply != middleware.ReplyNotAllowed {
		t.Errorf("reply = %d (%v), want 2", out.reply, out.err)
	}
	var re *middleware.ReplyError
	if !errors.As(out.err, &re) || re.Code != middleware.ReplyNotAllowed || !errors.Is(out.err, filter.ErrDenied) {
		t.Fatalf("err = %v, want a ReplyError 0x02 wrapping ErrDenied", out.err)
	}
	var de *filter.DeniedError
	if !errors.As(out.err, &de) || de.Rule != rule {
		t.Errorf("err = %v, want DeniedError for rule %d", out.err, rule)
		return
	}
	if got := de.Addr; deniedAddr == "" && got.IsValid() || deniedAddr != "" && got.String() != deniedAddr {
		t.Errorf("DeniedError.Addr = %v, want %q", got, deniedAddr)
	}
}

func TestDialAddress(t *testing.T) {
	mw := build(t, loopbackPolicy, &fakeResolver{})
	d := &fakeDialer{}
	if out := serve(t, mw, d, addr("192.0.2.10", 443)); out.reply != 0 || out.err != nil {
		t.Fatalf("allowed address: reply %d, %v", out.reply, out.err)
	}
	wantDenied(t, serve(t, mw, d, addr("127.0.0.1", 22)), 1, "")
	wantDenied(t, serve(t, mw, d, addr("::1", 22)), 1, "")
	wantDenied(t, serve(t, mw, d, addr("169.254.169.254", 80)), 1, "")
	wantDenied(t, serve(t, mw, d, addr("::ffff:127.0.0.1", 80)), 1, "")
	wantDenied(t, serve(t, mw, d, addr("0.0.0.0", 80)), 1, "")
	if got, want := d.addresses(), []string{"192.0.2.10:443"}; !slices.Equal(got, want) {
		t.Errorf("dialed %q, want %q", got, want)
	}
	// An admin may.
	if out := serveAs(t, mw, d, "root", middleware.RoleAdmin, addr("127.0.0.1", 22)); out.reply != 0 {
		t.Errorf("admin to loopback: reply %d, %v", out.reply, out.err)
	}
}

func TestDialNameDialsResolvedAddresses(t *testing.T) {
	res := &fakeResolver{table: map[string][]string{"two.test": {"192.0.2.1", "2001:db8::2", "192.0.2.3"}}}
	mw := build(t, loopbackPolicy, res)
	d := &fakeDialer{refuse: map[string]bool{"192.0.2.1:8443": true}}
	out := serve(t, mw, d, name("two.test", 8443))
	if out.reply != 0 || out.err != nil {
		t.Fatalf("reply %d, %v", out.reply, out.err)
	}
	// In order, as IP:port, until one connects; never the name.
	if got, want := d.addresses(), []string{"192.0.2.1:8443", "[2001:db8::2]:8443"}; !slices.Equal(got, want) {
		t.Errorf("dialed %q, want %q", got, want)
	}
	if got, want := res.lookups(), []string{"ip two.test"}; !slices.Equal(got, want) {
		t.Errorf("lookups %q, want %q", got, want)
	}

	// None connects: the first error, as net.Dialer reports it.
	d = &fakeDialer{refuse: map[string]bool{"192.0.2.1:1": true, "[2001:db8::2]:1": true, "192.0.2.3:1": true}}
	out = serve(t, mw, d, name("two.test", 1))
	var oe *net.OpError
	if out.reply != middleware.ReplyConnectionRefused || !errors.As(out.err, &oe) {
		t.Errorf("all refused: reply %d, %v", out.reply, out.err)
	}
	if n := len(d.addresses()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

func TestDialRebindingDenied(t *testing.T) {
	res := &fakeResolver{table: map[string][]string{
		"rebind.test": {"127.0.0.1"},
		"multi.test":  {"192.0.2.1", "192.0.2.2", "169.254.169.254"},
		"mapped.test": {"::ffff:127.0.0.1"},
		"six.test":    {"::1"},
	}}
	// Even with a broad allow by name above the loopback deny.
	cfg := map[string]any{"rules": append(rules(map[string]any{"action": "allow", "dest": []any{"*.test"}}), loopbackPolicy["rules"].([]any)...)}
	mw := build(t, cfg, res)
	d := &fakeDialer{}
	wantDenied(t, serve(t, mw, d, name("rebind.test", 80)), 2, "127.0.0.1")
	wantDenied(t, serve(t, mw, d, name("multi.test", 80)), 2, "169.254.169.254")
	wantDenied(t, serve(t, mw, d, name("mapped.test", 80)), 2, "127.0.0.1")
	wantDenied(t, serve(t, mw, d, name("six.test", 80)), 2, "::1")
	if got := d.addresses(); len(got) != 0 {
		t.Errorf("dialed %q, want nothing: a denied name is refused before any dial", got)
	}
	if out := serveAs(t, mw, d, "root", middleware.RoleAdmin, name("rebind.test", 80)); out.reply != 0 {
		t.Errorf("admin: reply %d, %v", out.reply, out.err)
	}
}

func TestDeniedNameNotResolved(t *testing.T) {
	res := &fakeResolver{table: map[string][]string{"db.internal": {"192.0.2.5"}, "ok.test": {"192.0.2.6"}}}
	d := &fakeDialer{}
	mw := build(t, map[string]any{"rules": rules(
		map[string]any{"action": "deny", "dest": []any{"*.internal", "localhost"}},
	)}, res)
	wantDenied(t, serve(t, mw, d, name("db.internal", 5432)), 0, "")
	wantDenied(t, serve(t, mw, d, name("LOCALHOST.", 80)), 0, "")
	wantDenied(t, serve(t, mw, d, name("nx.internal", 80)), 0, "") // would not resolve: still 0x02
	if got := res.lookups(); len(got) != 0 {
		t.Errorf("looked up %q for names denied whatever they resolve to", got)
	}

	// Default deny with no address rule: no lookup either.
	mw = build(t, map[string]any{"default": "deny", "rules": rules(
		map[string]any{"action": "allow", "dest": []any{"ok.test"}},
	)}, res)
	wantDenied(t, serve(t, mw, d, name("other.test", 80)), -1, "")
	if got := res.lookups(); len(got) != 0 {
		t.Errorf("looked up %q", got)
	}
	if out := serve(t, mw, d, name("ok.test", 80)); out.reply != 0 {
		t.Errorf("ok.test: reply %d, %v", out.reply, out.err)
	}
	// An IP literal sent as a name is checked as the address, not looked up.
	mw = build(t, loopbackPolicy, res)
	wantDenied(t, serve(t, mw, d, name("127.0.0.1", 80)), 1, "")
	wantDenied(t, serve(t, mw, d, name("::1", 80)), 1, "")
	if got, want := res.lookups(), []string{"ip ok.test"}; !slices.Equal(got, want) {
		t.Errorf("lookups %q, want %q", got, want)
	}
}

func TestResolveFailure(t *testing.T) {
	tests := []struct {
		name    string
		res     *fakeResolver
		host    string
		timeout bool
	}{
		{name: "not found", res: &fakeResolver{}, host: "nx.test"},
		{name: "no addresses", res: &fakeResolver{table: map[string][]string{"empty.test": {}}}, host: "empty.test"},
		{name: "plain error", res: &fakeResolver{err: errors.New("resolver on fire")}, host: "x.test"},
		{name: "timeout", res: &fakeResolver{err: fmt.Errorf("lookup: %w", context.DeadlineExceeded)}, host: "x.test", timeout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw := build(t, loopbackPolicy, tt.res)
			d := &fakeDialer{}
			out := serve(t, mw, d, name(tt.host, 80))
			// The engine's reply: host unreachable, or TTL expired for a
			// lookup that timed out.
			want := middleware.ReplyHostUnreachable
			if tt.timeout {
				want = middleware.ReplyTTLExpired
			}
			var dnsErr *net.DNSError
			if !errors.As(out.err, &dnsErr) || out.reply != want {
				t.Fatalf("reply %d, err %v; want a *net.DNSError, reply %d", out.reply, out.err, want)
			}
			if dnsErr.IsTimeout != tt.timeout {
				t.Errorf("IsTimeout = %v", dnsErr.IsTimeout)
			}
			if tt.res.err != nil && !errors.Is(out.err, tt.res.err) {
				t.Errorf("%v does not wrap the resolver's error", out.err)
			}
			if got := d.addresses(); len(got) != 0 {
				t.Errorf("dialed %q", got)
			}
			ss := mw.(middleware.StatsSource).Stats()
			if ss[0].Value != 0 || ss[1].Value != 0 {
				t.Errorf("a failed lookup counted as a decision: %v", ss)
			}
		})
	}
}

func TestLookupNetworkFamily(t *testing.T) {
	res := &fakeResolver{table: map[string][]string{"dual.test": {"2001:db8::1", "192.0.2.1", "::ffff:192.0.2.2"}}}
	mw := build(t, nil, res)
	for _, tc := range []struct {
		network string
		want    []string
	}{
		{"tcp4", []string{"192.0.2.1:80", "192.0.2.2:80"}},
		{"tcp6", []string{"[2001:db8::1]:80"}},
	} {
		d := &fakeDialer{refuse: map[string]bool{"192.0.2.1:80": true, "[2001:db8::1]:80": true}}
		s, _ := mwtest.Session(t)
		s.Dialer = d
		tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
			s.Command = middleware.CmdConnect
			_, _ = s.Dialer.DialContext(context.Background(), tc.network, "dual.test:80")
		}}
		if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
			t.Fatal(err)
		}
		if got := d.addresses(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: dialed %q, want %q", tc.network, got, tc.want)
		}
	}
	if got, want := res.lookups(), []string{"ip4 dual.test", "ip6 dual.test"}; !slices.Equal(got, want) {
		t.Errorf("lookups %q, want %q", got, want)
	}
}

func TestBadAddressFailsClosed(t *testing.T) {
	mw := build(t, nil, &fakeResolver{})
	for _, tc := range []struct{ network, address string }{
		{"tcp", "no-port"},
		{"tcp", ":80"},
		{"tcp", "example.test:http"},
		{"tcp", "example.test:65536"},
		{"unix", "/run/x.sock"},
		{"ip", "192.0.2.1:80"},
	} {
		d := &fakeDialer{}
		s, _ := mwtest.Session(t)
		s.Dialer = d
		var err error
		tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
			_, err = s.Dialer.DialContext(context.Background(), tc.network, tc.address)
		}}
		if serr := mwtest.Serve(context.Background(), mw, tm, s); serr != nil {
			t.Fatal(serr)
		}
		if !errors.Is(err, filter.ErrAddress) && !errors.Is(err, filter.ErrNetwork) {
			t.Errorf("%s %q: err = %v, want ErrAddress or ErrNetwork", tc.network, tc.address, err)
		}
		if got := d.addresses(); len(got) != 0 {
			t.Errorf("%s %q: dialed %q", tc.network, tc.address, got)
		}
	}
}

// TestAttemptDeadlines: with several addresses each attempt but the last
// gets a share of the time left, so a silent first address cannot use it
// all.
func TestAttemptDeadlines(t *testing.T) {
	res := &fakeResolver{table: map[string][]string{"two.test": {"192.0.2.1", "192.0.2.2"}}}
	mw := build(t, nil, res)
	d := &fakeDialer{refuse: map[string]bool{"192.0.2.1:80": true}}
	if out := serve(t, mw, d, name("two.test", 80)); out.reply != 0 {
		t.Fatalf("reply %d, %v", out.reply, out.err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.deadlines) != 2 {
		t.Fatalf("%d attempts", len(d.deadlines))
	}
	// The engine allows 10s: about 5s for the first, the rest for the last.
	if first, last := d.deadlines[0], d.deadlines[1]; first > 6*time.Second || first < 3*time.Second || last < 8*time.Second {
		t.Errorf("attempt deadlines %v, %v; want about 5s then about 10s", first, last)
	}
}

func TestContextCancelledStopsDialing(t *testing.T) {
	res := &fakeResolver{table: map[string][]string{"two.test": {"192.0.2.1", "192.0.2.2"}}}
	mw := build(t, nil, res)
	d := &fakeDialer{}
	s, _ := mwtest.Session(t)
	s.Dialer = d
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var err error
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
		_, err = s.Dialer.DialContext(ctx, "tcp", "two.test:80")
	}}
	if serr := mwtest.Serve(context.Background(), mw, tm, s); serr != nil {
		t.Fatal(serr)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if got := d.addresses(); len(got) != 0 {
		t.Errorf("dialed %q after cancel", got)
	}
}

func stats(t *testing.T, mw middleware.Middleware) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	for _, s := range mw.(middleware.StatsSource).Stats() {
		m[s.Key] = s.Value
	}
	return m
}

func TestCountersAndHits(t *testing.T) {
	res := &fakeResolver{table: map[string][]string{"rebind.test": {"127.0.0.1"}, "ok.test": {"192.0.2.1"}, "localhost.": {"127.0.0.1", "::1"}}}
	p := mwtest.Params("filter", loopbackPolicy)
	mw, err := filter.NewWithResolver(p, res)
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDialer{}
	serve(t, mw, d, addr("127.0.0.1", 80))                                      // rule 1
	serve(t, mw, d, name("rebind.test", 80))                                    // rule 1
	serve(t, mw, d, name("ok.test", 80))                                        // default
	serveAs(t, mw, d, "root", middleware.RoleAdmin, name("localhost.", 80))     // rule 0, by name then address
	serveAs(t, mw, d, "root", middleware.RoleAdmin, addr("169.254.169.254", 1)) // rule 0
	serve(t, mw, d, name("nx.test", 80))                                        // lookup failure: no decision
	if got := stats(t, mw); got["filter_denied"] != 2 || got["filter_allowed"] != 3 || len(got) != 2 {
		t.Errorf("stats = %v, want filter_denied 2, filter_allowed 3", got)
	}
	it := items(t, mw)
	if !strings.HasSuffix(it[0], " hits=2") || !strings.HasSuffix(it[1], " hits=2") {
		t.Errorf("items = %q, want 2 hits each", it)
	}

	// Policy.Allowed counts too.
	c := mw.(middleware.Policy)
	if ok, rule := c.Allowed(&middleware.Session{Role: middleware.RoleBasic}, middleware.CmdUDPAssociate, addr("::1", 53), nil); ok || rule != 1 {
		t.Errorf("Allowed = %v, %d", ok, rule)
	}
	if got := stats(t, mw)["filter_denied"]; got != 3 {
		t.Errorf("filter_denied = %d after Allowed, want 3", got)
	}

	// A rebuild that inserts a rule first keeps the counts with their rules.
	p.Config = map[string]any{"rules": append(rules(map[string]any{"action": "deny", "ports": []any{25}}), loopbackPolicy["rules"].([]any)...)}
	mw2, err := filter.NewWithResolver(p, res)
	if err != nil {
		t.Fatal(err)
	}
	it2 := items(t, mw2)
	if !strings.HasSuffix(it2[0], " hits=0") || it2[1] != it[0] || it2[2] != replaceHits(it[1], 3) {
		t.Errorf("after insert items = %q (before %q)", it2, it)
	}
	if got := stats(t, mw2); got["filter_denied"] != 3 || got["filter_allowed"] != 3 {
		t.Errorf("stats after rebuild = %v", got)
	}

	// Another stage name keeps its own counts, under its own keys.
	other, err := filter.NewWithResolver(middleware.Params{Name: "egress", Shared: p.Shared, Config: loopbackPolicy}, res)
	if err != nil {
		t.Fatal(err)
	}
	if got := stats(t, other); got["egress_denied"] != 0 || got["egress_allowed"] != 0 || len(got) != 2 {
		t.Errorf("egress stats = %v", got)
	}
}

// replaceHits sets the hits= count that ends an item.
func replaceHits(item string, n int) string {
	return item[:strings.LastIndex(item, "=")+1] + strconv.Itoa(n)
}

// TestConcurrentSessions runs sessions in parallel through one compiled
// chain (run with -race).
func TestConcurrentSessions(t *testing.T) {
	res := &fakeResolver{table: map[string][]string{"rebind.test": {"127.0.0.1"}, "ok.test": {"192.0.2.1"}}}
	mw := build(t, loopbackPolicy, res)
	d := &fakeDialer{}
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		target := name("ok.test", 80)
		if i%2 == 1 {
			target = name("rebind.test", 80)
		}
		s, _ := mwtest.Session(t)
		s.Dialer = d
		h := mw.Wrap(connect("carol", middleware.RoleBasic, target))
		wg.Go(func() {
			var re *middleware.ReplyError
			if err := h.ServeConn(context.Background(), s); err != nil && (!errors.As(err, &re) || re.Code != middleware.ReplyNotAllowed) {
				t.Error(err)
			}
		})
		wg.Go(func() { _ = mw.(middleware.StatsSource).Stats(); _ = items(t, mw) })
	}
	wg.Wait()
	if got := stats(t, mw); got["filter_denied"] != n/2 || got["filter_allowed"] != n/2 {
		t.Errorf("stats = %v", got)
	}
	if got := len(d.addresses()); got != n/2 {
		t.Errorf("%d dials, want %d", got, n/2)
	}
}

// TestRealLocalhost resolves "localhost" with the system resolver (the one
// name tests resolve for real) and dials a loopback listener.
func TestRealLocalhost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)

	// Loopback denied by address only: the name is resolved, then refused.
	mw := build(t, map[string]any{"rules": rules(map[string]any{"action": "deny", "dest": []any{"127.0.0.0/8", "::1/128"}})}, nil)
	out := serve(t, mw, &net.Dialer{}, name("localhost", port))
	if out.reply != middleware.ReplyNotAllowed || !errors.Is(out.err, filter.ErrDenied) {
		t.Errorf("localhost with loopback denied: reply %d, %v", out.reply, out.err)
	}

	// Allowed: the resolved addresses are dialed until one connects.
	mw = build(t, nil, nil)
	if out := serve(t, mw, &net.Dialer{}, name("localhost", port)); out.reply != 0 {
		t.Errorf("localhost allowed: reply %d, %v", out.reply, out.err)
	}
}

// TestAllowedNameBeforeLookup: Policy.Allowed with a name and no addresses
// is the engine's check before it looks the name up (BIND, UDP), in the
// policy dialer's order: a name refused whatever it resolves to is refused
// and counted; a name an address could still decide passes uncounted and
// is decided with its addresses.
func TestAllowedNameBeforeLookup(t *testing.T) {
	cfg := map[string]any{"default": "deny", "rules": rules(
		map[string]any{"action": "deny", "dest": []any{"*.internal"}},
		map[string]any{"action": "allow", "dest": []any{"10.0.0.0/8"}},
	)}
	mw := build(t, cfg, &fakeResolver{})
	pol := mw.(middleware.Policy)
	s := &middleware.Session{User: "carol", Role: middleware.RoleBasic}
	for _, cmd := range []middleware.Command{middleware.CmdBind, middleware.CmdUDPAssociate} {
		if ok, rule := pol.Allowed(s, cmd, name("db.internal", 53), nil); ok || rule != 0 {
			t.Errorf("%v db.internal before the lookup = %v, rule %d; want refused by rule 0", cmd, ok, rule)
		}
		// The default denies, but rule 1 could allow an address: not
		// refused by name alone.
		if ok, _ := pol.Allowed(s, cmd, name("x.test", 53), nil); !ok {
			t.Errorf("%v x.test before the lookup refused; an address rule could allow it", cmd)
		}
		if ok, rule := pol.Allowed(s, cmd, name("x.test", 53), []netip.Addr{netip.MustParseAddr("10.1.2.3")}); !ok || rule != 1 {
			t.Errorf("%v x.test → 10.1.2.3 = %v, rule %d; want allowed by rule 1", cmd, ok, rule)
		}
		if ok, rule := pol.Allowed(s, cmd, name("x.test", 53), []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.0.2.1")}); ok || rule != -1 {
			t.Errorf("%v x.test → 10.1.2.3, 192.0.2.1 = %v, rule %d; want refused by the default", cmd, ok, rule)
		}
	}
	// Per command: db.internal refused twice by name, x.test decided twice
	// with its addresses; the passes before the lookup are not counted.
	if got := stats(t, mw); got["filter_denied"] != 4 || got["filter_allowed"] != 2 {
		t.Errorf("stats = %v, want filter_denied 4, filter_allowed 2", got)
	}
}

// TestDialDeniedNameBehindAddressDeny: a deny rule on addresses before the
// rule that denies a name by its name cannot make the name allowed, so the
// name is refused without a lookup (no DNS side channel for internal
// names); an allow rule on addresses before it can, so then the name is
// looked up.
func TestDialDeniedNameBehindAddressDeny(t *testing.T) {
	res := &fakeResolver{table: map[string][]string{"db.internal": {"10.1.1.1"}}}
	mw := build(t, map[string]any{"rules": rules(
		map[string]any{"action": "deny", "dest": []any{"127.0.0.0/8"}},
		map[string]any{"action": "deny", "dest": []any{"*.internal"}},
	)}, res)
	d := &fakeDialer{}
	wantDenied(t, serve(t, mw, d, name("db.internal", 5432)), 1, "")
	if got := res.lookups(); len(got) != 0 {
		t.Errorf("a denied name was looked up: %q", got)
	}

	mw = build(t, map[string]any{"rules": rules(
		map[string]any{"action": "allow", "dest": []any{"10.0.0.0/8"}},
		map[string]any{"action": "deny", "dest": []any{"*.internal"}},
	)}, res)
	if out := serve(t, mw, d, name("db.internal", 5432)); out.reply != 0 || out.err != nil {
		t.Errorf("db.internal in 10.0.0.0/8: reply %d, %v", out.reply, out.err)
	}
	if got, want := res.lookups(), []string{"ip db.internal"}; !slices.Equal(got, want) {
		t.Errorf("lookups %q, want %q", got, want)
	}
}

// nameDialer is an inner dialer that hands names to an upstream
// (middleware.NameDialer), as the forward stage's does for its rules.
type nameDialer struct{ fakeDialer }

func (d *nameDialer) DialsName(_, address string) bool { return strings.HasSuffix(address, ".test:80") }

// A name the inner dialer hands to an upstream is decided by name alone,
// never looked up, and passed on unresolved; a CIDR cannot allow it.
func TestNameForAnUpstream(t *testing.T) {
	res := &fakeResolver{table: map[string][]string{"a.up.test": {"127.0.0.1"}}}
	mw := build(t, map[string]any{"default": "deny", "rules": rules(
		map[string]any{"action": "deny", "dest": []any{"bad.up.test"}},
		map[string]any{"action": "allow", "dest": []any{"*.up.test"}},
		map[string]any{"action": "allow", "dest": []any{"10.0.0.0/8"}},
	)}, res)
	d := &nameDialer{}
	if out := serve(t, mw, d, name("a.up.test", 80)); out.err != nil {
		t.Fatalf("allowed name: %v", out.err)
	}
	wantDenied(t, serve(t, mw, d, name("bad.up.test", 80)), 0, "")
	// Only a CIDR could allow it, and the name is never resolved here.
	wantDenied(t, serve(t, mw, &nameDialer{}, name("other.test", 80)), -1, "")
	if got := res.lookups(); len(got) != 0 {
		t.Errorf("lookups %q, want none", got)
	}
	if got := d.dialed; !slices.Equal(got, []string{"a.up.test:80"}) {
		t.Errorf("dialed %q, want the name unresolved", got)
	}
}
