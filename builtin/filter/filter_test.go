package filter_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/socks5d/socks5d/builtin/filter"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// rules builds the YAML shape of a rules list.
func rules(rs ...map[string]any) []any {
	out := make([]any, len(rs))
	for i, r := range rs {
		out[i] = r
	}
	return out
}

// build builds a filter stage named "filter" from cfg with resolver res
// (nil: the system resolver, which tests only use for "localhost").
func build(t *testing.T, cfg map[string]any, res filter.Resolver) middleware.Middleware {
	t.Helper()
	mw, err := filter.NewWithResolver(mwtest.Params("filter", cfg), res)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return mw
}

func items(t *testing.T, mw middleware.Middleware) []string {
	t.Helper()
	ed, ok := mw.(middleware.Editable)
	if !ok {
		t.Fatal("stage does not implement Editable")
	}
	it, ok := ed.Items("rules")
	if !ok {
		t.Fatal(`Items("rules") not ok`)
	}
	return it
}

func TestRegistered(t *testing.T) {
	info, ok := middleware.Lookup(filter.Type)
	if !ok {
		t.Fatal("filter is not registered")
	}
	if info.Doc == "" {
		t.Error("no Doc")
	}
	mw, err := info.New(mwtest.Params("filter", nil))
	if err != nil {
		t.Fatalf("New with defaults: %v", err)
	}
	if _, ok := mw.(middleware.Policy); !ok {
		t.Error("stage does not implement middleware.Policy")
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     map[string]any
		def     string   // Settings' default
		items   []string // Items("rules")
		wantErr error
		errHas  []string
	}{
		{name: "defaults", cfg: nil, def: "allow", items: []string{}},
		{name: "default deny", cfg: map[string]any{"default": "deny"}, def: "deny", items: []string{}},
		{name: "default any case", cfg: map[string]any{"default": "DENY"}, def: "deny", items: []string{}},
		{name: "default allow", cfg: map[string]any{"default": "allow", "rules": []any{}}, def: "allow", items: []string{}},
		{name: "every key", cfg: map[string]any{"default": "deny", "rules": rules(
			map[string]any{"action": "deny",
				"dest":     []any{"127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "localhost", "*.internal", ".corp.example", "192.0.2.7"},
				"ports":    []any{"1-1023", 8080, "443"},
				"commands": []any{"connect", "bind", "udp"},
				"users":    []any{"alice", "bob smith"},
				"roles":    []any{"basic", "admin"},
				"sources":  []any{"10.0.0.0/8", "2001:db8::1"}},
			map[string]any{"action": "allow"},
		)}, def: "deny", items: []string{
			`deny dest=127.0.0.0/8,::1/128,169.254.0.0/16,fe80::/10,localhost,*.internal,.corp.example,192.0.2.7 ports=1-1023,8080,443 commands=connect,bind,udp users=alice,"bob smith" roles=basic,admin sources=10.0.0.0/8,2001:db8::1 hits=0`,
			`allow hits=0`,
		}},
		{name: "normalised", cfg: map[string]any{"rules": rules(map[string]any{"action": "DENY",
			"dest":     []any{"LocalHost.", "10.0.0.1/8", "::ffff:127.0.0.1/104", "::FFFF:127.0.0.1", "*.Internal", ".Corp.Example."},
			"ports":    []any{80, "80-80", "0-1023", 65535},
			"commands": []any{"CONNECT"},
			"roles":    []any{"Basic"},
			"sources":  []any{"10.0.0.1/32"}})},
			def: "allow", items: []string{
				`deny dest=localhost,10.0.0.0/8,127.0.0.0/8,127.0.0.1,*.internal,.corp.example ports=80,80,0-1023,65535 commands=connect roles=basic sources=10.0.0.1/32 hits=0`,
			}},

		{name: "unknown key", cfg: map[string]any{"rule": []any{}},
			wantErr: middleware.ErrUnknownKey, errHas: []string{`"rule"`, "default, rules"}},
		{name: "bad default", cfg: map[string]any{"default": "maybe"},
			wantErr: middleware.ErrBadValue, errHas: []string{`"default"`, `"maybe"`, "allow or deny"}},
		{name: "default wrong type", cfg: map[string]any{"default": true},
			wantErr: middleware.ErrBadValue, errHas: []string{`"default"`}},
		{name: "rules not a list", cfg: map[string]any{"rules": "deny all"},
			wantErr: middleware.ErrBadValue, errHas: []string{`"rules"`}},
		{name: "rule not a map", cfg: map[string]any{"rules": []any{"deny"}},
			wantErr: middleware.ErrBadValue, errHas: []string{`"rules"`}},
		{name: "unknown rule key", cfg: map[string]any{"rules": rules(map[string]any{"action": "deny", "dst": []any{"a"}})},
			wantErr: middleware.ErrUnknownKey, errHas: []string{"rules[0]", `"dst"`, "action, commands, dest, ports, roles, sources, users"}},
		{name: "missing action", cfg: map[string]any{"rules": rules(map[string]any{"dest": []any{"a.example"}})},
			wantErr: middleware.ErrBadValue, errHas: []string{"rules[0].action", "required"}},
		{name: "bad action", cfg: map[string]any{"rules": rules(map[string]any{"action": "drop"})},
			wantErr: middleware.ErrBadValue, errHas: []string{"rules[0].action", `"drop"`}},
		{name: "dest not a list", cfg: map[string]any{"rules": rules(map[string]any{"action": "deny", "dest": "localhost"})},
			wantErr: middleware.ErrBadValue, errHas: []string{"rules[0]", `"dest"`}},
		{name: "empty list", cfg: map[string]any{"rules": rules(map[string]any{"action": "deny", "users": []any{}})},
			wantErr: middleware.ErrBadValue, errHas: []string{"rules[0].users", "empty"}},
		{name: "bad CIDR names index and key", cfg: map[string]any{"rules": rules(
			map[string]any{"action": "allow"}, map[string]any{"action": "allow"},
			map[string]any{"action": "deny", "dest": []any{"300.0.0.0/8"}})},
			wantErr: middleware.ErrBadValue, errHas: []string{`rules[2].dest[0]: "300.0.0.0/8" is not a CIDR, IP, host name or wildcard`}},
		{name: "bad port", cfg: map[string]any{"rules": rules(map[string]any{"action": "deny", "ports": []any{80, 65536}})},
			wantErr: middleware.ErrBadValue, errHas: []string{`rules[0].ports[1]: "65536"`}},
		{name: "port wrong type", cfg: map[string]any{"rules": rules(map[string]any{"action": "deny", "ports": []any{true}})},
			wantErr: middleware.ErrBadValue, errHas: []string{"rules[0]", `"ports"`}},
		{name: "bad command", cfg: map[string]any{"rules": rules(map[string]any{"action": "deny", "commands": []any{"associate"}})},
			wantErr: middleware.ErrBadValue, errHas: []string{`rules[0].commands[0]: "associate"`, "connect, bind, udp"}},
		{name: "bad user", cfg: map[string]any{"rules": rules(map[string]any{"action": "deny", "users": []any{""}})},
			wantErr: middleware.ErrBadValue, errHas: []string{`rules[0].users[0]`}},
		{name: "long user", cfg: map[string]any{"rules": rules(map[string]any{"action": "deny", "users": []any{strings.Repeat("u", 256)}})},
			wantErr: middleware.ErrBadValue, errHas: []string{`rules[0].users[0]`}},
		{name: "bad role", cfg: map[string]any{"rules": rules(map[string]any{"action": "deny", "roles": []any{"root"}})},
			wantErr: middleware.ErrBadValue, errHas: []string{`rules[0].roles[0]: "root"`, "basic, admin"}},
		{name: "bad source", cfg: map[string]any{"rules": rules(map[string]any{"action": "deny", "sources": []any{"10.0.0.0/8", "example.com"}})},
			wantErr: middleware.ErrBadValue, errHas: []string{`rules[0].sources[1]: "example.com"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := filter.New(mwtest.Params("filter", tt.cfg))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("New: err = %v, want %v", err, tt.wantErr)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %s", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			st := mw.(middleware.Tunable).Settings()
			if len(st) != 1 || st[0].Key != "default" || st[0].Value != tt.def || st[0].Help == "" {
				t.Errorf("Settings = %+v, want default: %s", st, tt.def)
			}
			if got := items(t, mw); !reflect.DeepEqual(got, tt.items) {
				t.Errorf("Items =\n%q\nwant\n%q", got, tt.items)
			}
		})
	}
}

// TestBadDest lists destination entries that are errors.
func TestBadDest(t *testing.T) {
	for _, v := range []string{
		"", "*", "*.", ".", "..", "a..b", "-a.example", "a-.example", "300.0.0.0", "1.2.3", "10.0.0.0/33",
		"fe80::1%eth0", "a_b c", "exa mple.com", "*.*.example", "a.*.example", "ex*ample.com", "::1/129",
		"http://example.com", "example.com:80", strings.Repeat("a", 64) + ".example", strings.Repeat("a.", 127) + "com",
	} {
		cfg := map[string]any{"rules": rules(map[string]any{"action": "deny", "dest": []any{"192.0.2.1", v}})}
		_, err := filter.New(mwtest.Params("filter", cfg))
		if !errors.Is(err, middleware.ErrBadValue) || !strings.Contains(err.Error(), "rules[0].dest[1]") {
			t.Errorf("dest %q: err = %v, want ErrBadValue naming rules[0].dest[1]", v, err)
		}
	}
	for _, v := range []string{"a", "xn--bcher-kva.example", "_srv._tcp.example", "a-b.example", "1.example", "example.123a", "*.a", ".a", "0:0::0/0", "0.0.0.0/0"} {
		cfg := map[string]any{"rules": rules(map[string]any{"action": "deny", "dest": []any{v}})}
		if _, err := filter.New(mwtest.Params("filter", cfg)); err != nil {
			t.Errorf("dest %q: %v", v, err)
		}
	}
}

func TestEditableOtherKey(t *testing.T) {
	mw := build(t, nil, nil)
	ed := mw.(middleware.Editable)
	if it, ok := ed.Items("default"); ok || it != nil {
		t.Errorf(`Items("default") = %q, %v; want nil, false`, it, ok)
	}
	if v, err := ed.ParseItem("users", "deny"); !errors.Is(err, middleware.ErrUnknownKey) || v != nil {
		t.Errorf(`ParseItem("users") = %v, %v; want ErrUnknownKey`, v, err)
	}
}

func TestParseItem(t *testing.T) {
	ed := build(t, nil, nil).(middleware.Editable)
	tests := []struct {
		line    string
		want    map[string]any
		wantErr error
		errHas  string
	}{
		{line: "deny", want: map[string]any{"action": "deny"}},
		{line: "  ALLOW\t ", want: map[string]any{"action": "allow"}},
		{line: "deny dest=127.0.0.0/8,::1/128 ports=1-1023,8080 commands=connect users=alice roles=basic sources=10.0.0.0/8 hits=3",
			want: map[string]any{"action": "deny", "dest": []any{"127.0.0.0/8", "::1/128"}, "ports": []any{"1-1023", 8080},
				"commands": []any{"connect"}, "users": []any{"alice"}, "roles": []any{"basic"}, "sources": []any{"10.0.0.0/8"}}},
		{line: `allow users="bob smith","a,b","x=y",plain DEST=LocalHost`,
			want: map[string]any{"action": "allow", "users": []any{"bob smith", "a,b", "x=y", "plain"}, "dest": []any{"localhost"}}},
		{line: `allow hits=anything`, want: map[string]any{"action": "allow"}},

		{line: "", wantErr: filter.ErrRuleSyntax},
		{line: "   ", wantErr: filter.ErrRuleSyntax},
		{line: "drop", wantErr: middleware.ErrBadValue, errHas: `rule.action: "drop"`},
		{line: "deny dest", wantErr: filter.ErrRuleSyntax, errHas: "key=value"},
		{line: "deny =x", wantErr: filter.ErrRuleSyntax},
		{line: "deny dest=", wantErr: filter.ErrRuleSyntax, errHas: "empty value"},
		{line: "deny dest=a,,b", wantErr: filter.ErrRuleSyntax, errHas: "empty value"},
		{line: "deny dest=a, b", wantErr: filter.ErrRuleSyntax},
		{line: "deny dest=a ports=1 dest=b", wantErr: filter.ErrRuleSyntax, errHas: `"dest" given twice`},
		{line: "deny to=a", wantErr: filter.ErrRuleSyntax, errHas: `unknown key "to" (known: dest, ports, commands, users, roles, sources, hits)`},
		{line: `deny users="unterminated`, wantErr: filter.ErrRuleSyntax, errHas: "quoted"},
		{line: `deny users="a"b`, wantErr: filter.ErrRuleSyntax},
		{line: `deny users=a"b"`, wantErr: filter.ErrRuleSyntax},
		{line: `deny,allow`, wantErr: filter.ErrRuleSyntax},
		{line: "deny dest=300.0.0.0/8", wantErr: middleware.ErrBadValue, errHas: `rule.dest[0]: "300.0.0.0/8" is not a CIDR, IP, host name or wildcard`},
		{line: "deny ports=99999", wantErr: middleware.ErrBadValue, errHas: `rule.ports[0]`},
		{line: `deny users=""`, wantErr: middleware.ErrBadValue, errHas: `rule.users[0]`},
	}
	for _, tt := range tests {
		v, err := ed.ParseItem("rules", tt.line)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("ParseItem(%q) = %v, %v; want %v mentioning %q", tt.line, v, err, tt.wantErr, tt.errHas)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(v, tt.want) {
			t.Errorf("ParseItem(%q) =\n%#v, %v\nwant %#v", tt.line, v, err, tt.want)
		}
	}
}

// TestItemsRoundTrip: every line Items prints parses back (ParseItem) to a
// rule that prints the same, hits aside; and what ParseItem returns is
// what New takes in the rules list.
func TestItemsRoundTrip(t *testing.T) {
	cfg := map[string]any{"default": "deny", "rules": rules(
		map[string]any{"action": "allow", "roles": []any{"admin"}, "dest": []any{"127.0.0.0/8", "::1", "localhost"}},
		map[string]any{"action": "deny", "dest": []any{"127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "localhost", "*.internal", ".corp.example"},
			"ports": []any{"1-1023", 8080}, "commands": []any{"connect", "udp"}, "users": []any{"alice", `we"ird, user=`, "ünï"},
			"roles": []any{"basic"}, "sources": []any{"10.0.0.0/8", "::ffff:10.1.0.0/112"}},
		map[string]any{"action": "allow", "ports": []any{443}},
		map[string]any{"action": "allow", "ports": []any{443}}, // a duplicate
		map[string]any{"action": "deny"},
	)}
	mw := build(t, cfg, nil)
	ed := mw.(middleware.Editable)
	orig := items(t, mw)
	parsed := make([]any, len(orig))
	for i, line := range orig {
		v, err := ed.ParseItem("rules", line)
		if err != nil {
			t.Fatalf("ParseItem(%q): %v", line, err)
		}
		parsed[i] = v
	}
	again := items(t, build(t, map[string]any{"default": "deny", "rules": parsed}, nil))
	if !reflect.DeepEqual(again, orig) {
		t.Errorf("round trip:\n%q\nwant\n%q", again, orig)
	}
	// An edit as core makes it: insert a parsed line, rebuild.
	v, err := ed.ParseItem("rules", "deny dest=.example.org hits=99")
	if err != nil {
		t.Fatal(err)
	}
	edited := append([]any{v}, parsed...)
	got := items(t, build(t, map[string]any{"rules": edited}, nil))
	if len(got) != len(orig)+1 || got[0] != "deny dest=.example.org hits=0" || !reflect.DeepEqual(got[1:], orig) {
		t.Errorf("after insert: %q", got)
	}
}

func TestTunableDefault(t *testing.T) {
	p := mwtest.Params("filter", map[string]any{"default": "allow"})
	mw := mwtest.New(t, filter.Type, p)
	if v := mw.(middleware.Tunable).Settings()[0].Value; v != "allow" {
		t.Fatalf("default = %s", v)
	}
	// CONFIG filter.default=deny rebuilds the stage with the new value.
	p.Config["default"] = "deny"
	mw = mwtest.New(t, filter.Type, p)
	if v := mw.(middleware.Tunable).Settings()[0].Value; v != "deny" {
		t.Errorf("after change default = %s, want deny", v)
	}
	p.Config["default"] = "perhaps"
	if _, err := filter.New(p); !errors.Is(err, middleware.ErrBadValue) {
		t.Errorf("default=perhaps: %v", err)
	}
}
