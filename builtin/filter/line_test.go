package filter

import (
	"reflect"
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// TestDeniedName: a name is refused before any lookup only when no
// address could change the outcome.
func TestDeniedName(t *testing.T) {
	compile := func(def string, rs ...map[string]any) *policy {
		t.Helper()
		m := map[string]any{"default": def, "rules": rs}
		p := middleware.Params{Name: "filter", Config: m}
		mw, err := New(p)
		if err != nil {
			t.Fatal(err)
		}
		return &mw.(*stage).policy
	}
	tests := []struct {
		name   string
		p      *policy
		host   string
		denied bool
		rule   int
	}{
		{"name denied", compile("allow", map[string]any{"action": "deny", "dest": []any{"*.internal"}}), "a.internal", true, 0},
		{"name not denied", compile("allow", map[string]any{"action": "deny", "dest": []any{"*.internal"}}), "a.example", false, -1},
		{"an address rule first could allow", compile("allow",
			map[string]any{"action": "allow", "dest": []any{"192.0.2.0/24"}},
			map[string]any{"action": "deny", "dest": []any{"*.internal"}}), "a.internal", false, 0},
		{"an address rule for others does not count", compile("allow",
			map[string]any{"action": "allow", "dest": []any{"192.0.2.0/24"}, "users": []any{"alice"}},
			map[string]any{"action": "deny", "dest": []any{"*.internal"}}), "a.internal", true, 1},
		{"catch-all deny", compile("allow", map[string]any{"action": "deny"}), "a.example", true, 0},
		{"default deny, no address rule", compile("deny", map[string]any{"action": "allow", "dest": []any{"ok.example"}}), "a.example", true, -1},
		{"default deny, an address rule could allow", compile("deny", map[string]any{"action": "allow", "dest": []any{"192.0.2.0/24"}}), "a.example", false, 0},
		{"allowed by name still needs its addresses", compile("deny", map[string]any{"action": "allow", "dest": []any{"ok.example"}}), "ok.example", false, 0},
	}
	for _, tt := range tests {
		q := queryOf(&middleware.Session{User: "carol", Role: middleware.RoleBasic}, middleware.CmdConnect, middleware.Target{Name: tt.host, Port: 80})
		denied, rule := tt.p.deniedName(&q)
		if denied != tt.denied || denied && rule != tt.rule {
			t.Errorf("%s: deniedName = %v, %d; want %v, %d", tt.name, denied, rule, tt.denied, tt.rule)
		}
	}
}

func TestPartialDeadline(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		left time.Duration
		n    int
		want time.Duration
	}{
		{10 * time.Second, 2, 5 * time.Second},
		{10 * time.Second, 1, 10 * time.Second},
		{10 * time.Second, 10, 2 * time.Second}, // at least minAttempt
		{time.Second, 3, time.Second},           // but never past the deadline
	} {
		if got := partialDeadline(now, now.Add(tc.left), tc.n).Sub(now); got != tc.want {
			t.Errorf("partialDeadline(%v, %d) = %v, want %v", tc.left, tc.n, got, tc.want)
		}
	}
}

// FuzzRuleLine: the one-line rule parser never panics, and a line it
// accepts prints (formatSpec) to a line that parses to the same rule and
// prints the same again.
func FuzzRuleLine(f *testing.F) {
	for _, seed := range []string{
		"deny",
		"allow hits=3",
		"deny dest=127.0.0.0/8,::1/128,169.254.0.0/16,fe80::/10,localhost,*.internal,.corp.example ports=1-1023,8080 commands=connect,bind,udp users=alice roles=basic,admin sources=10.0.0.0/8",
		`allow users="bob smith","a,b",x=y DEST=LocalHost. PORTS=80-80`,
		`deny users="\xff\u00e9" sources=::ffff:10.0.0.0/104`,
		"deny\tdest=a.example\t ports=0-65535",
		`deny users="unterminated`,
		"deny dest=a,,b",
		"drop",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		m, err := parseRule(line)
		if err != nil {
			return
		}
		r, err := compileRule("rule", m)
		if err != nil {
			t.Fatalf("parseRule(%q) returned %v, which does not compile: %v", line, m, err)
		}
		m2, err := parseRule(r.text)
		if err != nil {
			t.Fatalf("parseRule(%q) ok, but its text %q: %v", line, r.text, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("parse→format→parse changed the rule:\n%q → %v\n%q → %v", line, m, r.text, m2)
		}
		r2, err := compileRule("rule", m2)
		if err != nil || r2.text != r.text {
			t.Fatalf("text not stable: %q then %q (%v)", r.text, r2.text, err)
		}
	})
}
