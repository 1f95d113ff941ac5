package main

import (
	"context"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/pctp"
)

// fixedSamples are two refreshes two seconds apart: 10 new connections,
// 2 MiB up and 8 MiB down, 4 failed logins; three sessions of two users.
func fixedSamples() (*sample, *sample) {
	t0 := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	prev := &sample{at: t0, stats: map[string]int64{
		"current_connections": 2, "total_connections": 100, "bytes_up_total": 1 << 20, "bytes_down_total": 1 << 20,
		"total_bytes_proxied": 2 << 20, "failed_auths": 6, "auth_bans": 1, "auth_banned_now": 0,
		"connect_latency_ms.p50": 4, "connect_latency_ms.p99": 96, "connect_latency_ms.count": 90,
		"pctp_failed_logins": 2, "log_dropped": 0, "panics_recovered": 0,
	}}
	cur := &sample{at: t0.Add(2 * time.Second), stats: map[string]int64{
		"current_connections": 3, "total_connections": 110, "bytes_up_total": 3 << 20, "bytes_down_total": 9 << 20,
		"total_bytes_proxied": 12 << 20, "failed_auths": 10, "auth_bans": 2, "auth_banned_now": 1,
		"connect_latency_ms.p50": 5, "connect_latency_ms.p99": 120, "connect_latency_ms.count": 100,
		"pctp_failed_logins": 3, "log_dropped": 7, "panics_recovered": 0, "limit_refused_per_ip": 4,
	},
		sessions: []sessionLine{
			{id: 1, user: "bob", client: "127.0.0.1:5001", dest: "example.org:443", up: 100, down: 200, rate: 1000},
			{id: 2, user: "alice", client: "127.0.0.1:5002", dest: "example.com:443", up: 1 << 20, down: 4 << 20, rate: 3 << 20},
			{id: 3, user: "alice", client: "127.0.0.1:5003", dest: "example.org:443", up: 0, down: 2 << 20, rate: 1 << 20},
		},
		users: map[string]map[string]int64{
			"alice": {"connections": 40, "failures": 2, "bytes_up": 1 << 20, "bytes_down": 10 << 20},
		},
	}
	return prev, cur
}

func TestRenderFixedInput(t *testing.T) {
	prev, cur := fixedSamples()
	got := render(prev, cur, screen{server: "127.0.0.1:8080", user: "admin", interval: time.Second, width: 100, height: 30})
	want := `socks5d 127.0.0.1:8080 as admin · every 1s · 07:00:02 UTC · q quits
Connections  open 3   new 5.0/s   total 110
Traffic      up 1.0 MiB/s   down 4.0 MiB/s   total up 3.0 MiB down 9.0 MiB
Auth         failed 2.0/s (total 10)   bans 2, now 1   PCTP failed 3
Latency      connect p50 5 ms   p99 120 ms   (since start, 100 dials)
Refused      by limits 4   log records dropped 7   panics 0

USER                                    RATE OPEN    CONNS    FAILS          UP        DOWN
alice                              4.0 MiB/s    2       40        2     2.0 MiB    16.0 MiB
bob                                 1000 B/s    1        -        -           -           -

DESTINATION                                                         RATE OPEN
example.com:443                                                3.0 MiB/s    1
example.org:443                                                1.0 MiB/s    2
`
	if got != want {
		t.Fatalf("screen:\n%s\nwant:\n%s", got, want)
	}
}

// The first refresh has nothing to take a rate from.
func TestRenderFirstRefresh(t *testing.T) {
	_, cur := fixedSamples()
	got := render(nil, cur, screen{server: "h:1", user: "admin", interval: time.Second, width: 100, height: 30})
	for _, want := range []string{"new -/s   total 110", "up -/s   down -/s", "failed -/s (total 10)"} {
		if !strings.Contains(got, want) {
			t.Errorf("first screen lacks %q:\n%s", want, got)
		}
	}
}

// Without the metrics stage: no split by direction, no latency; with no
// dial yet: no percentiles.
func TestRenderWithoutMetrics(t *testing.T) {
	prev, cur := fixedSamples()
	for _, s := range []*sample{prev, cur} {
		for _, k := range []string{"bytes_up_total", "bytes_down_total", "connect_latency_ms.p50", "connect_latency_ms.p99", "connect_latency_ms.count"} {
			delete(s.stats, k)
		}
	}
	got := render(prev, cur, screen{server: "h:1", user: "admin", interval: time.Second, width: 100, height: 30})
	for _, want := range []string{"Traffic      5.0 MiB/s both ways", "Latency      n/a"} {
		if !strings.Contains(got, want) {
			t.Errorf("screen lacks %q:\n%s", want, got)
		}
	}
	cur.stats["connect_latency_ms.count"] = 0
	if got := render(prev, cur, screen{width: 100, height: 30}); !strings.Contains(got, "no dial timed yet") {
		t.Errorf("no dial yet:\n%s", got)
	}
}

// Whatever the window, the screen fits it: no line wider, no more lines;
// the tables give up rows first.
func TestRenderAdaptsToWindow(t *testing.T) {
	prev, cur := fixedSamples()
	for _, size := range [][2]int{{100, 30}, {80, 24}, {60, 14}, {40, 10}, {20, 5}, {1, 1}} {
		got := render(prev, cur, screen{server: "127.0.0.1:8080", user: "admin", interval: time.Second, width: size[0], height: size[1]})
		lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		if len(lines) > size[1] {
			t.Errorf("%dx%d: %d lines", size[0], size[1], len(lines))
		}
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > size[0] {
				t.Errorf("%dx%d: line of %d runes: %q", size[0], size[1], n, l)
			}
		}
	}
	// 14 lines: 7 of header, 2 column heads, 1 spacer: 2 users and 2
	// destinations.
	got := render(prev, cur, screen{width: 80, height: 14})
	if !strings.Contains(got, "alice") || !strings.Contains(got, "bob") || !strings.Contains(got, "example.org") {
		t.Errorf("80x14 lost a row:\n%s", got)
	}
	got = render(prev, cur, screen{width: 80, height: 12})
	if !strings.Contains(got, "alice") || strings.Contains(got, "bob") || !strings.Contains(got, "example.com") || strings.Contains(got, "example.org") {
		t.Errorf("80x12 should keep only the busiest of each:\n%s", got)
	}
}

func TestParseSession(t *testing.T) {
	si := middleware.SessionInfo{ID: 7, User: "a b%", Client: netip.MustParseAddrPort("127.0.0.1:4000"),
		Target: middleware.Target{Name: "example.com", Port: 443}, Up: 10, Down: 20, Rate: 30,
		Start: time.Unix(100, 0), Active: time.Unix(101, 0)}
	s, ok := parseSession(pctp.FormatSession(si, time.Unix(105, 0)))
	if !ok || s.id != 7 || s.user != "a%20b%25" || s.dest != "example.com:443" || s.up != 10 || s.down != 20 || s.rate != 30 {
		t.Fatalf("parsed %+v, %v", s, ok)
	}
	if name, ok := unescapeField(s.user); !ok || name != "a b%" || escapeField(name) != s.user {
		t.Fatalf("unescape %q = %q, %v", s.user, name, ok)
	}
	for _, bad := range []string{"", "x y z w", "1 a b"} {
		if _, ok := parseSession(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// topAdmin is the fake proxy with sessions of alice and of an anonymous
// client, and numbers for alice.
func topAdmin() *admin {
	now := time.Now()
	return &admin{
		users: map[string]string{"admin": "password"},
		io:    "4096",
		sessions: []middleware.SessionInfo{
			{ID: 1, User: "alice", Client: netip.MustParseAddrPort("127.0.0.1:5001"), Target: middleware.Target{Name: "example.com", Port: 443},
				Up: 100, Down: 5000, Start: now, Active: now, Rate: 2048},
			{ID: 2, Client: netip.MustParseAddrPort("127.0.0.1:5002"), Target: middleware.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: 80},
				Up: 1, Down: 2, Start: now, Active: now, Rate: 10},
		},
		userStats: map[string][]middleware.Stat{"alice": {{Key: "connections", Value: 9}, {Key: "failures", Value: 1},
			{Key: "bytes_up", Value: 1000}, {Key: "bytes_down", Value: 9000}}},
	}
}

// One refresh against a real PCTP server: STATS and SESSIONS, then the
// next round also asks STATS USER about the busiest user of this one.
func TestTopRoundAgainstServer(t *testing.T) {
	port := serverWith(t, topAdmin())
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		t.Fatal(err)
	}
	c := pctp.NewClient(conn)
	defer c.Close()
	if _, err := fetch(c, nil); err == nil {
		t.Fatal("fetch before login: no error")
	}
	if err := c.Login("admin", "password"); err != nil {
		t.Fatal(err)
	}
	s, err := fetch(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.stats["total_connections"] != 2 || len(s.sessions) != 2 || s.sessions[0].user != "alice" || s.sessions[0].rate != 2048 || len(s.users) != 0 {
		t.Fatalf("first round: %+v", s)
	}
	users := nextUsers(s, maxUsersAsked)
	if strings.Join(users, ",") != "alice" { // the anonymous session is not asked about
		t.Fatalf("next users %q", users)
	}
	if got := topCommands(users); strings.Join(got, "|") != "STATS|SESSIONS|STATS USER alice" {
		t.Fatalf("round %q", got)
	}
	s2, err := fetch(c, append(users, "nobody"))
	if err != nil {
		t.Fatal(err)
	}
	if s2.users["alice"]["connections"] != 9 || len(s2.users) != 1 {
		t.Fatalf("second round users: %+v", s2.users)
	}
	screen := render(s, s2, screen{server: "x", user: "admin", interval: time.Second, width: 100, height: 30})
	if !strings.Contains(screen, "alice") || !strings.Contains(screen, "2.0 KiB/s") || !strings.Contains(screen, "example.com:443") {
		t.Fatalf("screen:\n%s", screen)
	}
}

// pctp top on a stdout that is not a terminal prints -n frames, then
// leaves the session with EXIT.
func TestTopCommandStream(t *testing.T) {
	port := serverWith(t, topAdmin())
	t.Setenv(passwordEnv, "password")
	t.Setenv("COLUMNS", "100")
	t.Setenv("LINES", "30")
	code, out, errOut := pctpRun(t, "", "-h", "127.0.0.1", "-p", port, "-u", "admin", "top", "-i", "100ms", "-n", "3")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if n := strings.Count(out, "socks5d 127.0.0.1:"+port+" as admin · every 100ms"); n != 3 {
		t.Fatalf("%d frames, want 3:\n%s", n, out)
	}
	frames := strings.Split(out, "\n\nsocks5d ")
	last := frames[len(frames)-1]
	if !strings.Contains(last, "alice") || !strings.Contains(last, "9 ") || !strings.Contains(last, "new 0.0/s") {
		t.Fatalf("last frame:\n%s", last)
	}
}

func TestTopUsage(t *testing.T) {
	port := server(t)
	for _, args := range [][]string{
		{"-p", port, "top"}, // no -u
		{"-p", port, "-u", "admin", "top", "-i", "10ms"}, // too often
		{"-p", port, "-u", "admin", "top", "-i", "soon"},
		{"-p", port, "-u", "admin", "top", "-n", "-1"},
		{"-p", port, "-u", "admin", "top", "extra"},
	} {
		code, _, errOut := pctpRun(t, "", args...)
		if code != exitUsage || errOut == "" {
			t.Errorf("%q: exit %d, want %d (stderr %q)", args, code, exitUsage, errOut)
		}
	}
}

// A round that cannot finish (the server went away) ends the view with
// an error, not a hang.
func TestTopServerGoesAway(t *testing.T) {
	a := topAdmin()
	port := serverWith(t, a)
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		t.Fatal(err)
	}
	c := pctp.NewClient(conn)
	if err := c.Login("admin", "password"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out strings.Builder
	conn.Close() // the next round fails at once
	if err := runTopStream(ctx, c, &out, topOptions{interval: time.Second}); err == nil {
		t.Fatal("no error from a closed session")
	}
}

// pctp -h alone is the help, which lists every flag with its default.
func TestHelpListsEveryFlag(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"-p", "1", "-h"}, {"-help"}} {
		code, out, errOut := pctpRun(t, "", args...)
		if code != exitOK || errOut != "" || out != usageText {
			t.Fatalf("%q: exit %d, stderr %q, stdout:\n%s", args, code, errOut, out)
		}
	}
	for _, name := range []string{"h", "p", "d", "u", "i", "n"} {
		m := regexp.MustCompile(`(?m)^  -` + name + ` .*(?:\n {15}.*)*`).FindString(usageText)
		if !strings.Contains(m, "(default ") {
			t.Errorf("-%s: no default in the help: %q", name, m)
		}
	}
}
