package socks5dmain

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/pctp"
)

// pasteSettings are the settings of registered stage, with settings away from their
// defaults where the form of a value is worth pasting back (lists, units,
// durations), by stage type; the chain is every registered stage.
var pasteSettings = map[string]string{
	"auth":      "{max_failures: 7, failure_window: 90s, ban: 1m30s, max_ban: 2h, ban_memory: 36h}",
	"filter":    "{default: allow, rules: [{action: deny, ports: [25, 2000-3000]}]}",
	"limits":    "{max_connections: 500, per_ip: 9, per_user: 3}",
	"metrics":   "{max_users: 50, latency_buckets: [1ms, 2.5ms, 1s, 1m30s]}",
	"ratelimit": "{per_connection: 1MiB, per_user: 64KiB, burst: 32KiB}",
	"iobuf":     "{size: 65536}",
	"connlog":   "{size: 5000}",
}

// TestConfigLinesPasteBack: every line CONFIG lists, for every builtin
// stage and the engine's socks.* settings, is accepted back as
// CONFIG key=value and changes nothing.
func TestConfigLinesPasteBack(t *testing.T) {
	var chain strings.Builder
	chain.WriteString("chain:\n")
	// Stages that must come before others (forward before filter) first.
	types := middleware.Types()
	slices.SortStableFunc(types, func(a, b string) int {
		ia, _ := middleware.Lookup(a)
		ib, _ := middleware.Lookup(b)
		return cmp.Compare(len(ib.Before), len(ia.Before))
	})
	for _, typ := range types {
		fmt.Fprintf(&chain, "  - use: %s\n", typ)
		if extra, ok := pasteSettings[typ]; ok {
			for _, kv := range splitFlow(extra) {
				fmt.Fprintf(&chain, "    %s\n", kv)
			}
		}
	}
	cfg, _ := filepath.Abs(writeConfig(t, chain.String()))
	s := startServer(t, append([]string{"-c", cfg, "-u", "admin:password"}, loopbackArgs...)...)
	c := login(t, s.pctpAddr(t))

	before := do(t, c, "CONFIG").Lines
	seen := map[string]bool{}
	for _, line := range before {
		key, value, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("CONFIG line %q is not key: value", line)
		}
		stage, _, _ := strings.Cut(key, ".")
		seen[stage] = true
		r, err := c.Do("CONFIG " + key + "=" + value)
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK {
			t.Errorf("CONFIG %s=%s: %s", key, value, r.Status)
		}
	}
	if after := do(t, c, "CONFIG").Lines; !slices.Equal(after, before) {
		t.Errorf("pasting CONFIG's lines back changed them:\nbefore %q\nafter  %q", before, after)
	}
	for _, stage := range []string{"socks", "auth", "filter", "iobuf", "limits", "metrics", "ratelimit"} {
		if !seen[stage] {
			t.Errorf("CONFIG lists nothing of %s", stage)
		}
	}
	if len(before) < 20 {
		t.Errorf("CONFIG listed only %d settings: %q", len(before), before)
	}

	// Every form an operator types for a value reads as the same value.
	for _, tc := range []struct {
		key   string
		forms []string
		line  string
	}{
		{"metrics.latency_buckets", []string{"[1ms, 2.5ms, 1s, 1m30s]", "1ms,2.5ms,1s,90s", "1ms, 2.5ms, 1s, 90s", "['1ms', \"2.5ms\", 1s, 90s]", "[1ms,2.5ms,1s,1m30s,]"},
			"[1ms, 2.5ms, 1s, 1m30s]"},
		{"metrics.latency_buckets", []string{"1s", "[1s]", "'1s'"}, "[1s]"},
		{"ratelimit.per_user", []string{"64KiB", "65536", "'65536'", "64 KiB", "64k"}, "65536"},
		{"auth.ban", []string{"90s", "1m30s", "'90s'", "1.5m"}, "1m30s"},
	} {
		for _, form := range tc.forms {
			if r, err := c.Do("CONFIG " + tc.key + "=" + form); err != nil || !r.OK {
				t.Errorf("CONFIG %s=%s: %v %s", tc.key, form, err, r.Status)
				continue
			}
			if got := configLine(t, c, tc.key); got != tc.line {
				t.Errorf("CONFIG %s=%s lists %q, want %q", tc.key, form, got, tc.line)
			}
		}
	}
}

// configLine returns the value CONFIG lists for key.
func configLine(t *testing.T, c *pctp.Client, key string) string {
	t.Helper()
	for _, line := range do(t, c, "CONFIG").Lines {
		if v, ok := strings.CutPrefix(line, key+": "); ok {
			return v
		}
	}
	t.Fatalf("CONFIG lists no %s", key)
	return ""
}

// splitFlow turns "{a: 1, b: [x, y]}" into "a: 1" and "b: [x, y]" lines.
func splitFlow(flow string) []string {
	flow = strings.TrimSuffix(strings.TrimPrefix(flow, "{"), "}")
	var out []string
	depth, start := 0, 0
	for i, r := range flow {
		switch r {
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(flow[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(flow[start:]))
}
