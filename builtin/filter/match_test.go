package filter_test

import (
	"net/netip"
	"testing"

	"github.com/socks5d/socks5d/middleware"
)

// req is one request as a matching test sees it.
type req struct {
	user     string
	role     middleware.Role
	client   string // "" for none
	cmd      middleware.Command
	dest     string // a name or an address
	port     uint16
	resolved []string
	byName   bool // send dest as a name even if it is an IP literal
}

func (r req) session() *middleware.Session {
	s := &middleware.Session{User: r.user, Role: r.role}
	if r.client != "" {
		s.Client = netip.MustParseAddrPort(r.client)
	}
	return s
}

func (r req) target() middleware.Target {
	if a, err := netip.ParseAddr(r.dest); err == nil && !r.byName {
		return middleware.Target{Addr: a, Port: r.port}
	}
	return middleware.Target{Name: r.dest, Port: r.port}
}

func (r req) addrs() []netip.Addr {
	var out []netip.Addr
	for _, s := range r.resolved {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

type matchCase struct {
	name  string
	req   req
	allow bool
	rule  int
}

func runMatch(t *testing.T, cfg map[string]any, cases []matchCase) {
	t.Helper()
	c := build(t, cfg, nil).(middleware.Policy)
	for _, tc := range cases {
		if tc.req.cmd == 0 {
			tc.req.cmd = middleware.CmdConnect
		}
		if tc.req.port == 0 {
			tc.req.port = 443
		}
		allow, rule := c.Allowed(tc.req.session(), tc.req.cmd, tc.req.target(), tc.req.addrs())
		if allow != tc.allow || rule != tc.rule {
			t.Errorf("%s: Allowed = %v, %d; want %v, %d", tc.name, allow, rule, tc.allow, tc.rule)
		}
	}
}

func TestMatchDest(t *testing.T) {
	cfg := map[string]any{"rules": rules(
		map[string]any{"action": "deny", "dest": []any{"127.0.0.0/8", "::1/128"}},       // 0
		map[string]any{"action": "deny", "dest": []any{"localhost"}},                    // 1
		map[string]any{"action": "deny", "dest": []any{"*.internal"}},                   // 2
		map[string]any{"action": "deny", "dest": []any{".corp.example"}},                // 3
		map[string]any{"action": "deny", "dest": []any{"192.0.2.7", "fe80::/10"}},       // 4
		map[string]any{"action": "deny", "dest": []any{"::ffff:198.51.100.0/120"}},      // 5
		map[string]any{"action": "deny", "dest": []any{"exact.example", "10.9.0.0/16"}}, // 6
	)}
	runMatch(t, cfg, []matchCase{
		{"IPv4 in CIDR", req{dest: "127.0.0.1"}, false, 0},
		{"IPv4 edge of CIDR", req{dest: "127.255.255.255"}, false, 0},
		{"IPv4 outside", req{dest: "128.0.0.1"}, true, -1},
		{"IPv6 loopback", req{dest: "::1"}, false, 0},
		{"IPv4-mapped IPv6", req{dest: "::ffff:127.0.0.1"}, false, 0},
		{"IP literal sent as a name", req{dest: "127.0.0.1", byName: true}, false, 0},
		{"mapped literal sent as a name", req{dest: "::ffff:127.0.0.1", byName: true}, false, 0},
		{"exact host", req{dest: "localhost"}, false, 1},
		{"exact host any case, trailing dot", req{dest: "LocalHost."}, false, 1},
		{"exact host is not a suffix", req{dest: "my.localhost"}, true, -1},
		{"wildcard below", req{dest: "db.internal"}, false, 2},
		{"wildcard deeper", req{dest: "a.b.internal"}, false, 2},
		{"wildcard not the domain itself", req{dest: "internal"}, true, -1},
		{"wildcard not a look-alike", req{dest: "xinternal"}, true, -1},
		{"suffix the domain itself", req{dest: "corp.example"}, false, 3},
		{"suffix below", req{dest: "git.corp.example"}, false, 3},
		{"suffix not a look-alike", req{dest: "evilcorp.example"}, true, -1},
		{"single address", req{dest: "192.0.2.7"}, false, 4},
		{"single address only", req{dest: "192.0.2.8"}, true, -1},
		{"IPv6 link-local", req{dest: "fe80::1"}, false, 4},
		{"mapped prefix matches IPv4", req{dest: "198.51.100.9"}, false, 5},
		{"name in a mixed rule", req{dest: "exact.example"}, false, 6},
		{"address in a mixed rule", req{dest: "10.9.1.1"}, false, 6},
		{"name rule does not match an address", req{dest: "10.8.0.1"}, true, -1},
		{"CIDR does not match a name without addresses", req{dest: "example.org"}, true, -1},
		{"name resolving into a denied network", req{dest: "example.org", resolved: []string{"127.0.0.1"}}, false, 0},
		{"name resolving elsewhere", req{dest: "example.org", resolved: []string{"93.184.216.34"}}, true, -1},
		{"one of several addresses denied", req{dest: "multi.example", resolved: []string{"192.0.2.1", "10.9.3.3", "192.0.2.2"}}, false, 6},
		{"mapped resolved address", req{dest: "m.example", resolved: []string{"::ffff:127.0.0.2"}}, false, 0},
		{"resolved ignored for an address", req{dest: "93.184.216.34", resolved: []string{"127.0.0.1"}}, true, -1},
	})
}

func TestMatchOthers(t *testing.T) {
	cfg := map[string]any{"default": "deny", "rules": rules(
		map[string]any{"action": "allow", "ports": []any{"80", "8000-8099"}, "users": []any{"alice"}}, // 0
		map[string]any{"action": "deny", "commands": []any{"bind", "udp"}},                            // 1
		map[string]any{"action": "allow", "roles": []any{"admin"}},                                    // 2
		map[string]any{"action": "allow", "sources": []any{"10.0.0.0/8", "2001:db8::/32"}},            // 3
		map[string]any{"action": "allow", "users": []any{"bob"}, "ports": []any{443}},                 // 4
	)}
	runMatch(t, cfg, []matchCase{
		{"user and port", req{user: "alice", dest: "192.0.2.1", port: 80}, true, 0},
		{"user and port range low", req{user: "alice", dest: "192.0.2.1", port: 8000}, true, 0},
		{"user and port range high", req{user: "alice", dest: "192.0.2.1", port: 8099}, true, 0},
		{"user, port outside", req{user: "alice", dest: "192.0.2.1", port: 8100}, false, -1},
		{"port, other user", req{user: "carol", dest: "192.0.2.1", port: 80}, false, -1},
		{"anonymous matches no user", req{dest: "192.0.2.1", port: 80}, false, -1},
		{"command bind", req{user: "bob", cmd: middleware.CmdBind, dest: "192.0.2.1"}, false, 1},
		{"command udp", req{role: middleware.RoleAdmin, cmd: middleware.CmdUDPAssociate, dest: "192.0.2.1"}, false, 1},
		{"first match wins over a later allow", req{user: "alice", cmd: middleware.CmdBind, dest: "192.0.2.1", port: 80}, true, 0},
		{"role admin", req{user: "root", role: middleware.RoleAdmin, dest: "192.0.2.1"}, true, 2},
		{"role basic", req{user: "carol", role: middleware.RoleBasic, dest: "192.0.2.1"}, false, -1},
		{"anonymous matches no role", req{dest: "192.0.2.1"}, false, -1},
		{"source v4", req{client: "10.1.2.3:5000", dest: "192.0.2.1"}, true, 3},
		{"source mapped", req{client: "[::ffff:10.1.2.3]:5000", dest: "192.0.2.1"}, true, 3},
		{"source v6", req{client: "[2001:db8::5]:5000", dest: "192.0.2.1"}, true, 3},
		{"source outside", req{client: "192.168.1.1:5000", dest: "192.0.2.1"}, false, -1},
		{"no source", req{dest: "192.0.2.1"}, false, -1},
		{"all matchers", req{user: "bob", dest: "example.org", port: 443, resolved: []string{"192.0.2.1"}}, true, 4},
		{"all matchers but one", req{user: "bob", dest: "example.org", port: 444, resolved: []string{"192.0.2.1"}}, false, -1},
	})
}

// TestMatchNames is about a destination asked for by name: name rules and
// address rules both apply.
func TestMatchNames(t *testing.T) {
	t.Run("allow by name, default deny", func(t *testing.T) {
		runMatch(t, map[string]any{"default": "deny", "rules": rules(
			map[string]any{"action": "allow", "dest": []any{"*.example.com"}},
		)}, []matchCase{
			{"allowed name", req{dest: "www.example.com", resolved: []string{"93.184.216.34"}}, true, 0},
			{"other name", req{dest: "www.example.org", resolved: []string{"93.184.216.34"}}, false, -1},
			{"address", req{dest: "93.184.216.34"}, false, -1},
		})
	})
	t.Run("allow by name above a catch-all deny", func(t *testing.T) {
		runMatch(t, map[string]any{"rules": rules(
			map[string]any{"action": "allow", "dest": []any{"good.example"}},
			map[string]any{"action": "deny"},
		)}, []matchCase{
			{"allowed name", req{dest: "good.example", resolved: []string{"192.0.2.1"}}, true, 0},
			{"other name", req{dest: "bad.example", resolved: []string{"192.0.2.1"}}, false, 1},
		})
	})
	t.Run("allow by network reaches names", func(t *testing.T) {
		runMatch(t, map[string]any{"default": "deny", "rules": rules(
			map[string]any{"action": "allow", "dest": []any{"93.184.0.0/16"}},
		)}, []matchCase{
			{"name into the network", req{dest: "example.com", resolved: []string{"93.184.216.34"}}, true, 0},
			{"name partly outside", req{dest: "example.com", resolved: []string{"93.184.216.34", "192.0.2.1"}}, false, -1},
		})
	})
	t.Run("rebinding whatever the order", func(t *testing.T) {
		for _, cfg := range []map[string]any{
			{"rules": rules(
				map[string]any{"action": "deny", "dest": []any{"127.0.0.0/8"}},
				map[string]any{"action": "allow", "dest": []any{"*.test"}},
			)},
			{"rules": rules(
				map[string]any{"action": "allow", "dest": []any{"*.test"}},
				map[string]any{"action": "deny", "dest": []any{"127.0.0.0/8"}},
			)},
		} {
			deny := 0
			if cfg["rules"].([]any)[1].(map[string]any)["action"] == "deny" {
				deny = 1
			}
			runMatch(t, cfg, []matchCase{
				{"rebind", req{dest: "rebind.test", resolved: []string{"127.0.0.1"}}, false, deny},
				{"rebind among others", req{dest: "rebind.test", resolved: []string{"192.0.2.1", "127.0.0.1"}}, false, deny},
				{"honest", req{dest: "honest.test", resolved: []string{"192.0.2.1"}}, true, 1 - deny},
			})
		}
	})
	t.Run("a later allow by network decides after an allow by name", func(t *testing.T) {
		runMatch(t, map[string]any{"rules": rules(
			map[string]any{"action": "allow", "dest": []any{"*.test"}},
			map[string]any{"action": "allow", "dest": []any{"127.0.0.1"}},
			map[string]any{"action": "deny", "dest": []any{"127.0.0.0/8"}},
		)}, []matchCase{
			{"allowed address", req{dest: "a.test", resolved: []string{"127.0.0.1"}}, true, 1},
			{"denied address", req{dest: "a.test", resolved: []string{"127.0.0.2"}}, false, 2},
		})
	})
	t.Run("admins exempt, others denied loopback", func(t *testing.T) {
		cfg := map[string]any{"rules": rules(
			map[string]any{"action": "allow", "roles": []any{"admin"}, "dest": []any{"127.0.0.0/8", "::1/128", "localhost"}},
			map[string]any{"action": "deny", "dest": []any{"127.0.0.0/8", "::1/128", "localhost"}},
		)}
		runMatch(t, cfg, []matchCase{
			{"admin by name", req{user: "root", role: middleware.RoleAdmin, dest: "localhost", resolved: []string{"127.0.0.1", "::1"}}, true, 0},
			{"admin by address", req{user: "root", role: middleware.RoleAdmin, dest: "127.0.0.1"}, true, 0},
			{"basic by name", req{user: "carol", role: middleware.RoleBasic, dest: "localhost", resolved: []string{"127.0.0.1"}}, false, 1},
			{"anonymous by address", req{dest: "::1"}, false, 1},
			{"basic rebinding", req{role: middleware.RoleBasic, dest: "x.example", resolved: []string{"127.0.0.1"}}, false, 1},
			{"basic elsewhere", req{role: middleware.RoleBasic, dest: "x.example", resolved: []string{"192.0.2.1"}}, true, -1},
		})
	})
	t.Run("allow by name only does not open a denied network", func(t *testing.T) {
		runMatch(t, map[string]any{"rules": rules(
			map[string]any{"action": "allow", "users": []any{"alice"}, "dest": []any{"localhost"}},
			map[string]any{"action": "deny", "dest": []any{"127.0.0.0/8"}},
		)}, []matchCase{
			{"name allowed, address denied", req{user: "alice", dest: "localhost", resolved: []string{"127.0.0.1"}}, false, 1},
		})
	})
}

// TestReadmeExample checks what README.md says of its second example.
func TestReadmeExample(t *testing.T) {
	private := []any{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "::1/128",
		"169.254.0.0/16", "fe80::/10", "fc00::/7", "0.0.0.0/8", "::/128", "localhost"}
	cfg := map[string]any{"default": "deny", "rules": rules(
		map[string]any{"action": "allow", "users": []any{"alice", "bob"}, "dest": []any{".dev.example.com", "10.20.0.0/16"}, "ports": []any{443}},
		map[string]any{"action": "deny", "dest": private},
		map[string]any{"action": "allow", "commands": []any{"connect"}, "ports": []any{80, 443}},
	)}
	runMatch(t, cfg, []matchCase{
		{"team host", req{user: "alice", dest: "git.dev.example.com", resolved: []string{"10.20.1.5"}}, true, 0},
		{"team name elsewhere in private space", req{user: "alice", dest: "x.dev.example.com", resolved: []string{"10.30.0.1"}}, false, 1},
		{"team name on the internet", req{user: "bob", dest: "cdn.dev.example.com", resolved: []string{"192.0.2.80"}}, true, 0},
		{"someone else, team host", req{user: "carol", dest: "git.dev.example.com", resolved: []string{"10.20.1.5"}}, false, 1},
		{"the web", req{user: "carol", dest: "example.org", port: 80, resolved: []string{"93.184.216.34"}}, true, 2},
		{"other port", req{user: "carol", dest: "example.org", port: 22, resolved: []string{"93.184.216.34"}}, false, -1},
		{"localhost", req{user: "alice", dest: "localhost", port: 443, resolved: []string{"127.0.0.1"}}, false, 1},
		// Before the lookup localhost cannot be refused: rule 0 would allow
		// it if it resolved into 10.20.0.0/16.
		{"localhost before the lookup", req{user: "alice", dest: "localhost", port: 443}, true, -1},
		{"localhost before the lookup, other user", req{user: "carol", dest: "localhost", port: 443}, false, 1},
	})
}
