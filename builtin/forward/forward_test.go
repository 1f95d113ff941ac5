package forward

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

func build(t *testing.T, cfg map[string]any) *stage {
	t.Helper()
	mw, err := New(mwtest.Params(Type, cfg))
	if err != nil {
		t.Fatal(err)
	}
	return mw.(*stage)
}

// TestChoose: first match wins, with filter's matchers; no match is
// direct; a CIDR cannot match a name that is not resolved yet.
func TestChoose(t *testing.T) {
	st := build(t, map[string]any{"rules": []any{
		map[string]any{"dest": []any{"10.0.0.0/8"}, "via": []any{"socks5://up:secret@127.0.0.1:1081"}},
		map[string]any{"users": []any{"alice"}, "bind": "127.0.0.2"},
		map[string]any{"dest": []any{".corp.example"}, "ports": []any{443, "8000-8999"}, "via": []any{"http://127.0.0.1:3128"}},
		map[string]any{"commands": []any{"bind"}, "roles": []any{"admin"}, "direct": true},
		map[string]any{"sources": []any{"192.0.2.0/24"}, "interface": "lo"},
	}})
	for _, tc := range []struct {
		name    string
		user    string
		role    middleware.Role
		client  string
		cmd     middleware.Command
		dest    string
		port    uint16
		address string // as dialed; "" for dest:port
		want    int    // rule index, -1 none
	}{
		{name: "cidr", dest: "10.1.2.3", port: 80, want: 0},
		{name: "cidr before user", user: "alice", dest: "10.1.2.3", port: 80, want: 0},
		{name: "user", user: "alice", dest: "192.0.2.1", port: 80, want: 1},
		{name: "suffix and port", dest: "www.corp.example", port: 443, want: 2},
		{name: "suffix and range", dest: "corp.example", port: 8080, want: 2},
		{name: "suffix, other port", dest: "www.corp.example", port: 80, want: -1},
		{name: "name not resolved: no cidr", dest: "intranet.test", port: 80, want: -1},
		{name: "name resolved into the cidr", dest: "intranet.test", port: 80, address: "10.9.9.9:80", want: 0},
		{name: "resolved name keeps its name", dest: "a.corp.example", port: 443, address: "192.0.2.9:443", want: 2},
		{name: "command and role", role: middleware.RoleAdmin, cmd: middleware.CmdBind, dest: "192.0.2.1", port: 1, want: 3},
		{name: "role only", role: middleware.RoleAdmin, dest: "192.0.2.1", port: 1, want: -1},
		{name: "source", client: "192.0.2.50:4000", dest: "198.51.100.1", port: 1, want: 4},
		{name: "nothing", dest: "198.51.100.1", port: 1, want: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &middleware.Session{User: tc.user, Role: tc.role, Command: tc.cmd}
			if s.Command == 0 {
				s.Command = middleware.CmdConnect
			}
			if tc.client != "" {
				s.Client = netip.MustParseAddrPort(tc.client)
			}
			s.Target = middleware.Target{Name: tc.dest, Port: tc.port}
			addr := tc.address
			if addr == "" {
				addr = s.Target.String()
			}
			q, ok := dialTarget(s, addr)
			if !ok {
				t.Fatalf("dialTarget(%q) failed", addr)
			}
			got := -1
			if r := st.choose(&q); r != nil {
				for i := range st.rules {
					if st.rules[i] == r {
						got = i
					}
				}
			}
			if got != tc.want {
				t.Fatalf("rule %d, want %d", got, tc.want)
			}
		})
	}
}

// TestDialsName: only a name whose rule names an upstream goes
// unresolved.
func TestDialsName(t *testing.T) {
	st := build(t, map[string]any{"rules": []any{
		map[string]any{"dest": []any{"*.up.test"}, "via": []any{"socks5://127.0.0.1:1081"}},
		map[string]any{"dest": []any{"10.0.0.0/8"}, "via": []any{"socks5://127.0.0.1:1081"}},
	}})
	for addr, want := range map[string]bool{
		"a.up.test:80":   true,
		"other.test:80":  false, // the CIDR could only match once resolved
		"10.0.0.1:80":    false, // an address is not a name
		"a.up.test:x":    false,
		"[::1]:80":       false,
		"up.test:80":     false,
		"b.a.up.test:80": true,
	} {
		host, _, _ := strings.Cut(addr, ":")
		d := &dialer{st: st, s: &middleware.Session{Command: middleware.CmdConnect, Target: middleware.Target{Name: host, Port: 80}}}
		if got := d.DialsName("tcp", addr); got != want {
			t.Errorf("DialsName(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestConfig: bad rules are refused naming the key; credentials never
// appear in an error.
func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		has  string
	}{
		{"direct and via", map[string]any{"rules": []any{map[string]any{"direct": true, "via": []any{"socks5://127.0.0.1:1"}}}}, "rules[0]: direct and via exclude each other"},
		{"empty via", map[string]any{"rules": []any{map[string]any{"via": []any{}}}}, "rules[0].via: empty list"},
		{"scheme", map[string]any{"rules": []any{map[string]any{"via": []any{"socks4://127.0.0.1:1"}}}}, `rules[0].via[0]: scheme "socks4" is not socks5 or http`},
		{"no port", map[string]any{"rules": []any{map[string]any{"via": []any{"socks5://127.0.0.1"}}}}, "rules[0].via[0]"},
		{"port 0", map[string]any{"rules": []any{map[string]any{"via": []any{"socks5://127.0.0.1:0"}}}}, "port 1-65535"},
		{"path", map[string]any{"rules": []any{map[string]any{"via": []any{"http://127.0.0.1:3128/x"}}}}, "want only scheme"},
		{"user without password", map[string]any{"rules": []any{map[string]any{"via": []any{"socks5://up@127.0.0.1:1"}}}}, "credentials must be user:password"},
		{"masked password sent back", map[string]any{"rules": []any{map[string]any{"via": []any{"socks5://up:***@127.0.0.1:1"}}}}, "password is shown masked"},
		{"bind", map[string]any{"rules": []any{map[string]any{"bind": "127.0.0.300"}}}, `rules[0].bind: "127.0.0.300" is not an IP address`},
		{"interface", map[string]any{"rules": []any{map[string]any{"interface": "a/b"}}}, "rules[0].interface"},
		{"matcher", map[string]any{"rules": []any{map[string]any{"ports": []any{"99999"}, "direct": true}}}, "rules[0].ports[0]"},
		{"unknown key", map[string]any{"rules": []any{map[string]any{"upstream": "x"}}}, `unknown key "upstream"`},
		{"fallback", map[string]any{"rules": []any{map[string]any{"via": []any{"socks5://127.0.0.1:1"}, "fallback": map[string]any{"via": []any{"ftp://127.0.0.1:2"}}}}}, "rules[0].fallback.via[0]"},
		{"timeout", map[string]any{"connect_timeout": "1ms"}, `"connect_timeout"`},
		{"failures", map[string]any{"failures": -1}, `"failures"`},
		{"credential in a bad value", map[string]any{"rules": []any{map[string]any{"via": "socks5://up:hunter2@127.0.0.1:1"}}}, `key "via"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(mwtest.Params(Type, tc.cfg))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, middleware.ErrBadValue) && !errors.Is(err, middleware.ErrUnknownKey) {
				t.Errorf("%v: want ErrBadValue or ErrUnknownKey", err)
			}
			if !strings.Contains(err.Error(), tc.has) {
				t.Errorf("%v: want it to mention %q", err, tc.has)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "secret") {
				t.Errorf("%v: shows a password", err)
			}
		})
	}
}

// TestLines: RULES lines mask passwords, and a line given back with the
// password parses to the same rule, which prints the same line.
func TestLines(t *testing.T) {
	st := build(t, nil)
	for _, tc := range []struct{ in, shown string }{
		{"direct users=bob", "direct users=bob"},
		{"via=socks5://up:secret@127.0.0.1:1081,http://127.0.0.1:3128 dest=10.0.0.0/8", "via=socks5://up:***@127.0.0.1:1081,http://127.0.0.1:3128 dest=10.0.0.0/8"},
		{"bind=127.0.0.2 users=alice", "direct bind=127.0.0.2 users=alice"},
		{"interface=lo bind=::1 ports=443", "direct bind=::1 interface=lo ports=443"},
		{"via=socks5://127.0.0.1:1 fallback=direct fallback_bind=127.0.0.3", "via=socks5://127.0.0.1:1 fallback=direct fallback_bind=127.0.0.3"},
		{"via=http://u:p%40ss@[::1]:8080 fallback=socks5://a:b@127.0.0.1:2", "via=http://u:***@[::1]:8080 fallback=socks5://a:***@127.0.0.1:2"},
		{"direct dest=\"*.internal\"", "direct dest=*.internal"},
	} {
		item, err := st.ParseItem(RulesKey, tc.in)
		if err != nil {
			t.Errorf("ParseItem(%q): %v", tc.in, err)
			continue
		}
		r, err := compileRule("rule", item.(map[string]any))
		if err != nil {
			t.Fatalf("%q: item %v does not compile: %v", tc.in, item, err)
		}
		if got := r.line(); got != tc.shown {
			t.Errorf("%q shows as %q, want %q", tc.in, got, tc.shown)
		}
	}
	for line, has := range map[string]string{
		"":                                 "want direct",
		"drop users=x":                     "starts with direct",
		"direct via=socks5://127.0.0.1:1":  "exclude",
		"via=socks5://u:***@127.0.0.1:1":   "masked",
		"bind=127.0.0.1,127.0.0.2":         "one value",
		"direct to=x":                      `unknown key "to"`,
		"via=socks5://u:hunter2@nohost:0x": "rule.via[0]",
	} {
		_, err := st.ParseItem(RulesKey, line)
		if err == nil || !strings.Contains(err.Error(), has) {
			t.Errorf("ParseItem(%q) = %v, want an error with %q", line, err, has)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseItem(%q): %v shows the password", line, err)
		}
	}
}

// TestSOCKSReplyFromBytes: the upstream's reply code is read from the
// bytes it sent, with and without RFC 1929.
func TestSOCKSReplyFromBytes(t *testing.T) {
	for _, tc := range []struct {
		got  []byte
		auth bool
		want uint8
	}{
		{[]byte{5, 0, 5, 4, 0, 1}, false, 4},
		{[]byte{5, 2, 1, 0, 5, 5, 0, 1}, true, 5},
		{[]byte{5, 2, 1, 1}, true, 0}, // authentication refused: no reply
		{[]byte{5, 0xff}, false, 0},
		{[]byte{5}, false, 0},
		{[]byte{5, 0, 4, 3}, false, 0}, // not version 5
	} {
		r := &recordingConn{got: tc.got}
		if got := r.reply(tc.auth); got != tc.want {
			t.Errorf("reply(%v, %v) = %d, want %d", tc.got, tc.auth, got, tc.want)
		}
	}
	for _, tc := range []struct {
		err  error
		last bool
		want middleware.Reply
	}{
		{&UpstreamError{Reply: 4}, true, middleware.ReplyHostUnreachable},
		{&UpstreamError{Reply: 3}, true, middleware.ReplyNetworkUnreachable},
		{&UpstreamError{Reply: 5}, true, middleware.ReplyConnectionRefused},
		{&UpstreamError{Reply: 5}, false, middleware.ReplyGeneralFailure},
		{&UpstreamError{Reply: 2}, true, middleware.ReplyGeneralFailure},
		{&UpstreamError{Status: 502}, true, middleware.ReplyGeneralFailure},
		{errors.New("x"), true, middleware.ReplyGeneralFailure},
	} {
		if got := replyOf(tc.err, tc.last); got != tc.want {
			t.Errorf("replyOf(%v, %v) = %v, want %v", tc.err, tc.last, got, tc.want)
		}
	}
}

// TestBackoff: the limit-th failure in a row skips the upstream until the
// backoff has passed; a success ends the streak.
func TestBackoff(t *testing.T) {
	h := &health{}
	t0 := mwClock()
	if h.fail(t0, 2, 10) || !h.usable(t0) {
		t.Fatal("one failure skipped it")
	}
	if !h.fail(t0, 2, 10) || h.usable(t0) {
		t.Fatal("two failures did not skip it")
	}
	if !h.usable(t0.Add(10)) {
		t.Fatal("still skipped after the backoff")
	}
	h.ok()
	if h.fail(t0, 2, 10) {
		t.Fatal("the streak survived a success")
	}
	if h.skipped.Load() != 1 || h.failures.Load() != 3 || h.connects.Load() != 1 {
		t.Fatalf("counters: skipped %d failures %d connects %d", h.skipped.Load(), h.failures.Load(), h.connects.Load())
	}
}

// TestStatsAndPurpose: keys are prefixed with the stage's name, one set
// per upstream; the rules are a rules list but not the policy.
func TestStatsAndPurpose(t *testing.T) {
	mw, err := New(mwtest.Params("egress", map[string]any{"rules": []any{
		map[string]any{"via": []any{"socks5://u:p@127.0.0.1:1081", "http://[::1]:3128"}},
		map[string]any{"direct": true, "fallback": map[string]any{"via": []any{"socks5://127.0.0.1:1081"}}},
	}}))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range mw.(middleware.StatsSource).Stats() {
		if !strings.HasPrefix(s.Key, "egress_") {
			t.Errorf("key %q lacks the stage's name", s.Key)
		}
		keys = append(keys, s.Key)
	}
	want := "egress_direct egress_via egress_fallbacks egress_refused " +
		"egress_upstream_http____1__3128_connects egress_upstream_http____1__3128_failures egress_upstream_http____1__3128_skipped " +
		"egress_upstream_socks5_127.0.0.1_1081_connects egress_upstream_socks5_127.0.0.1_1081_failures egress_upstream_socks5_127.0.0.1_1081_skipped"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("keys:\n%s\nwant:\n%s", got, want)
	}
	pf := mw.(middleware.Purposeful)
	if k, ok := pf.Purpose(middleware.PurposeRules); !ok || k != RulesKey {
		t.Errorf("Purpose(rules) = %q, %v", k, ok)
	}
	if _, ok := pf.Purpose(middleware.PurposePolicy); ok {
		t.Error("forward claims to be the destination policy")
	}
}

func mwClock() time.Time { return time.Unix(1000, 0) }
