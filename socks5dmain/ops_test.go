package socks5dmain

// The operator's files under configs/ (systemd, fail2ban, Prometheus,
// Grafana), each checked by the tool that consumes it, against what this
// server really writes and exports. A missing tool skips the check, except
// under CI=true, where it is a failure.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socks5d/socks5d/internal/testnet"
	"github.com/socks5d/socks5d/pctp"
)

// configsDir is the repository's configs/, absolute (startServer changes
// the working directory).
func configsDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join(lcPkgDir, "..", "configs"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// requireTool finds an operator tool, or skips (fails under CI=true).
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing and CI=true: install Debian's %s (.ci/run does)", name, debianPackage)
	}
	t.Skipf("%s not installed (Debian package %s); CI=true makes this a failure", name, debianPackage)
	return ""
}

// runTool runs a tool with a time limit and returns its combined output.
func runTool(t *testing.T, stdin io.Reader, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The unit passes `systemd-analyze verify` with the binary it names in
// place (a copy of the unit pointing at the binary built for the tests).
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile(filepath.Join(configsDir(t), "systemd", "socks5d.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nDynamicUser=yes\n", "\nStateDirectory=socks5d\n", "\nEnvironment=SOCKS5D_DATA_DIR=%S/socks5d\n",
		"\nProtectSystem=strict\n", "\nNoNewPrivileges=yes\n", "\nRestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK\n",
		"\nSystemCallFilter=@system-service\n", "\nExecReload=/bin/kill -HUP $MAINPID\n", "\nCapabilityBoundingSet=\n",
		"\n#AmbientCapabilities=CAP_NET_BIND_SERVICE\n"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
	// The stop timeout outlasts the default drain.
	m := regexp.MustCompile(`\nTimeoutStopSec=(\S+)\n`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("no TimeoutStopSec")
	}
	if d, err := time.ParseDuration(string(m[1])); err != nil || d <= 30*time.Second {
		t.Errorf("TimeoutStopSec=%s: want longer than socks.drain_timeout's default 30s", m[1])
	}
	// Enough descriptors for the automatic max_connections to exceed the
	// ~10,000 held connections the bench documents.
	if m := regexp.MustCompile(`\nLimitNOFILE=(\d+)\n`).FindSubmatch(unit); m == nil || len(m[1]) < 6 {
		t.Errorf("LimitNOFILE missing or below 100000")
	}

	bin := socks5dBinary(t)
	dir := t.TempDir()
	copyUnit := filepath.Join(dir, "socks5d.service")
	if err := os.WriteFile(copyUnit, bytes.ReplaceAll(unit, []byte("/usr/local/bin/socks5d"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runTool(t, nil, analyze, "verify", copyUnit)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// And the tool does fail on a broken unit.
	broken := filepath.Join(t.TempDir(), "socks5d.service")
	os.WriteFile(broken, bytes.ReplaceAll(unit, []byte("/usr/local/bin/socks5d"), []byte("/nonexistent/socks5d")), 0o644)
	if out, err := runTool(t, nil, analyze, "verify", broken); err == nil && strings.TrimSpace(out) == "" {
		t.Fatal("systemd-analyze verify accepts a unit whose binary is missing: the check proves nothing")
	}
}

// f2bLogins are the failing logins the fail2ban test makes.
type f2bLogins struct {
	socksUsers []string // SOCKS logins with a wrong password
	pctpUsers  []string // PCTP logins with a wrong password
}

// The crafted names try to smuggle another client_ip into the line.
var f2bCrafted = f2bLogins{
	socksUsers: []string{"admin", `eve" client_ip=6.6.6.6 x="`, `x","client_ip":"6.6.6.6","listener":"socks","y":"`},
	pctpUsers:  []string{"admin", `eve"client_ip=6.6.6.6`},
}

// serverAuthLog runs the server in a log format, makes failing and
// succeeding SOCKS and PCTP logins, and returns the log split into the
// failure lines (the stable WARN line) and every other line.
func serverAuthLog(t *testing.T, format string) (failures, others []string) {
	t.Helper()
	// DEBUG: the engine's own line about a failed handshake, and the
	// successful connections', are in the log too, and must not match.
	cfg := writeConfig(t, "log:\n  format: "+format+"\n  level: DEBUG\n")
	s := startServer(t, append([]string{"-c", cfg, "-u", "admin:password"}, loopbackArgs...)...)
	echo := testnet.Echo(t)
	for _, u := range f2bCrafted.socksUsers {
		if c, err := dialer(t, s.socks, u, "wrong").Dial("tcp", echo); err == nil {
			c.Close()
			t.Fatalf("SOCKS login %q with a wrong password accepted", u)
		}
	}
	c, err := dialer(t, s.socks, "admin", "password").Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	for _, u := range f2bCrafted.pctpUsers {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		pc, err := pctp.Dial(ctx, s.pctpAddr(t))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := pc.Login(u, "wrong"); err == nil {
			t.Fatalf("PCTP login %q with a wrong password accepted", u)
		}
		pc.Close()
	}
	login(t, s.pctpAddr(t)) // a success, logged too

	want := len(f2bCrafted.socksUsers) + len(f2bCrafted.pctpUsers)
	isFailure := func(l string) bool {
		if format == "json" {
			return strings.HasPrefix(l, `{"@level":"warn","@message":"authentication failed",`)
		}
		return strings.Contains(l, " [WARN]  ") && strings.Contains(l, ": authentication failed: listener=")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		failures, others = nil, nil
		for _, l := range strings.Split(strings.TrimSpace(s.log.String()), "\n") {
			if isFailure(l) {
				failures = append(failures, l)
			} else {
				others = append(others, l)
			}
		}
		if len(failures) >= want || time.Now().After(deadline) {
			break
		}
	}
	if len(failures) != want {
		t.Fatalf("%d failure lines, want %d:\n%s", len(failures), want, s.log)
	}
	if !slices.ContainsFunc(others, func(l string) bool { return strings.Contains(l, "logged in") }) {
		t.Fatalf("no successful PCTP login in the log:\n%s", s.log)
	}
	if !slices.ContainsFunc(others, func(l string) bool { return strings.Contains(l, "authentication failed") }) {
		t.Fatalf("no engine DEBUG line about the failed handshakes in the log:\n%s", s.log)
	}
	return failures, others
}

// The fail2ban filter, run by fail2ban-regex on lines this server wrote in
// both log formats: every failure line of both listeners matches and
// yields the client's address (never one a crafted user name carries);
// no other line matches.
func TestFail2banFilterMatchesServerLines(t *testing.T) {
	regex := requireTool(t, "fail2ban-regex", "fail2ban")
	filter := filepath.Join(configsDir(t), "fail2ban", "filter.d", "socks5d.conf")
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			failures, others := serverAuthLog(t, format)
			for _, listener := range []string{"socks", "pctp"} {
				if !slices.ContainsFunc(failures, func(l string) bool {
					return strings.Contains(l, "listener="+listener) || strings.Contains(l, `"listener":"`+listener+`"`)
				}) {
					t.Fatalf("no %s failure line:\n%s", listener, strings.Join(failures, "\n"))
				}
			}
			dir := t.TempDir()
			write := func(name string, lines []string) string {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}
			failLog, otherLog := write("failures.log", failures), write("others.log", others)
			allLog := write("all.log", append(slices.Clone(others), failures...))

			out, err := runTool(t, nil, regex, "-r", "-o", "ip", failLog, filter)
			if err != nil {
				t.Fatalf("fail2ban-regex: %v\n%s", err, out)
			}
			ips := strings.Fields(out)
			if len(ips) != len(failures) {
				t.Fatalf("fail2ban-regex matched %d of %d failure lines:\n%s\nlines:\n%s", len(ips), len(failures), out, strings.Join(failures, "\n"))
			}
			for _, ip := range ips {
				if ip != "127.0.0.1" {
					t.Errorf("captured host %q, want the client's 127.0.0.1", ip)
				}
			}
			if out, err := runTool(t, nil, regex, "-r", "-o", "ip", otherLog, filter); err != nil || strings.TrimSpace(out) != "" {
				t.Fatalf("lines other than failures matched (%v):\n%s", err, out)
			}
			out, err = runTool(t, nil, regex, allLog, filter)
			summary := regexp.MustCompile(`Lines: \d+ lines, 0 ignored, (\d+) matched, (\d+) missed`).FindStringSubmatch(out)
			if err != nil || summary == nil || summary[1] != fmt.Sprint(len(failures)) || summary[2] != fmt.Sprint(len(others)) {
				t.Fatalf("fail2ban-regex summary (%v):\n%s", err, out)
			}
			t.Logf("fail2ban-regex (%s): %s", format, summary[0])
		})
	}
}

// The jail and the filter load in a fail2ban configuration
// (fail2ban-client -t), next to Debian's stock files.
func TestFail2banJailLoads(t *testing.T) {
	client := requireTool(t, "fail2ban-client", "fail2ban")
	if _, err := os.Stat("/etc/fail2ban/fail2ban.conf"); err != nil {
		t.Skipf("no stock fail2ban configuration to load the jail with: %v", err)
	}
	dir := t.TempDir()
	// Debian's stock configuration, without its own jails (their logs do
	// not exist here), plus ours.
	if out, err := exec.Command("cp", "-r", "/etc/fail2ban/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	stock, _ := filepath.Glob(filepath.Join(dir, "jail.d", "*"))
	for _, f := range stock {
		os.Remove(f)
	}
	for _, f := range []string{"filter.d/socks5d.conf", "jail.d/socks5d.conf"} {
		body, err := os.ReadFile(filepath.Join(configsDir(t), "fail2ban", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runTool(t, nil, client, "-c", dir, "-t")
	if err != nil || !strings.Contains(out, "OK: configuration test is successful") {
		t.Fatalf("fail2ban-client -t: %v\n%s", err, out)
	}
	out, err = runTool(t, nil, client, "-c", dir, "-d")
	if err != nil || !strings.Contains(out, "['add', 'socks5d', 'systemd']") || !strings.Contains(out, "_SYSTEMD_UNIT=socks5d.service") {
		t.Fatalf("fail2ban-client -d does not set up the socks5d jail on the journal: %v\n%s", err, out)
	}
}

// The rules pass promtool's checks and their unit tests, and the example
// configuration loads them.
func TestPrometheusRules(t *testing.T) {
	promtool := requireTool(t, "promtool", "prometheus")
	dir := filepath.Join(configsDir(t), "prometheus")
	for _, args := range [][]string{
		{"check", "rules", filepath.Join(dir, "socks5d.rules.yml")},
		{"test", "rules", filepath.Join(dir, "socks5d.rules.test.yml")},
		{"check", "config", filepath.Join(dir, "prometheus.yml")},
	} {
		out, err := runTool(t, nil, promtool, args...)
		if err != nil || !strings.Contains(out, "SUCCESS") {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("promtool %s %s: %s", args[0], args[1], strings.Join(strings.Fields(out), " "))
	}
}

// metricsServer starts the server with /metrics on and returns it and the
// metrics URL.
func metricsServer(t *testing.T) (*server, string) {
	t.Helper()
	cfg := writeConfig(t, "metrics:\n  enabled: true\n  port: 0\n")
	s := startServer(t, append([]string{"-c", cfg, "-u", "admin:password"}, loopbackArgs...)...)
	m := s.logged(t, metricsRE, "metrics address")
	return s, m[1]
}

// scrapeText returns /metrics as served.
func scrapeText(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// streaming keeps a relay busy through the proxy until stopped: chunks
// echoed back one after the other.
func streaming(t *testing.T, proxyAddr string) (stop func()) {
	t.Helper()
	c, err := dialer(t, proxyAddr, "admin", "password").Dial("tcp", testnet.Echo(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for i := 0; i < 100000; i++ { // bounded; stopped long before
			select {
			case <-quit:
				return
			default:
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(buf); err != nil {
				return
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		c.Close()
	}
}

// sampleValue is the value of a sample line "name{labels} value" whose
// name and labels start with prefix, once the instance_name label every
// sample carries is left out.
func sampleValue(text, prefix string) (string, bool) {
	for _, l := range strings.Split(withoutInstanceName(text), "\n") {
		if strings.HasPrefix(l, prefix) {
			f := strings.Fields(l)
			return f[len(f)-1], true
		}
	}
	return "", false
}

// promtool check metrics accepts a scrape taken while a transfer runs.
func TestPromtoolCheckMetricsDuringTransfer(t *testing.T) {
	promtool := requireTool(t, "promtool", "prometheus")
	s, url := metricsServer(t)
	if _, err := dialer(t, s.socks, "admin", "wrong").Dial("tcp", testnet.Echo(t)); err == nil {
		t.Fatal("wrong password accepted")
	}
	stop := streaming(t, s.socks)
	var text string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		text = scrapeText(t, url)
		open, _ := sampleValue(text, "socks5d_connections_open ")
		up, _ := sampleValue(text, `socks5d_bytes_total{direction="up"} `)
		if (open == "1" && up != "" && up != "0") || time.Now().After(deadline) {
			if open != "1" || up == "0" {
				t.Fatalf("no transfer in flight in the scrape (open %q, up %q)", open, up)
			}
			break
		}
	}
	stop()
	out, err := runTool(t, strings.NewReader(text), promtool, "check", "metrics")
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	// And it would say so about a bad exposition.
	bad := "# TYPE x_total counter\nx_total{a=\"1\"} 1\nx_total{a=\"1\"} 2\n"
	if _, err := runTool(t, strings.NewReader(bad), promtool, "check", "metrics"); err == nil {
		t.Fatal("promtool check metrics accepts a duplicate series: the check proves nothing")
	}
}

// withoutInstanceName removes the instance_name label from the samples of
// a scrape: `x{instance_name="h:1"} 1` → `x 1`, `x{a="1",instance_name="h:1"} 1` → `x{a="1"} 1`.
func withoutInstanceName(text string) string {
	text = regexp.MustCompile(`\{instance_name="[^"]*"\}`).ReplaceAllString(text, "")
	text = regexp.MustCompile(`,instance_name="[^"]*"`).ReplaceAllString(text, "")
	return regexp.MustCompile(`instance_name="[^"]*",`).ReplaceAllString(text, "")
}

// promqlNames returns the metric names a PromQL expression selects, and
// the socks5d_stat keys it names with key="..." or key=~"a|b".
func promqlNames(expr string) (names, statKeys []string) {
	for _, m := range regexp.MustCompile(`socks5d_stat\{[^}]*key=~?"([^"]*)"`).FindAllStringSubmatch(expr, -1) {
		statKeys = append(statKeys, strings.Split(m[1], "|")...)
	}
	e := regexp.MustCompile(`"(?:[^"\\]|\\.)*"`).ReplaceAllString(expr, `""`) // strings
	e = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(e, " ")              // label matchers
	e = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(e, " ")             // ranges
	e = regexp.MustCompile(`\$\{?\w+\}?`).ReplaceAllString(e, " ")            // Grafana variables
	e = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`).ReplaceAllString(e, " ")
	e = regexp.MustCompile(`\boffset\s+\w+`).ReplaceAllString(e, " ")
	keywords := map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "inf": true, "nan": true}
	for _, m := range regexp.MustCompile(`([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?`).FindAllStringSubmatch(e, -1) {
		if m[2] != "" || keywords[strings.ToLower(m[1])] { // a function call or an operator
			continue
		}
		names = append(names, m[1])
	}
	return names, statKeys
}

func TestPromqlNames(t *testing.T) {
	names, keys := promqlNames(`topk($topn, sum by (user, le) (rate(socks5d_user_bytes_total{job="socks5d", instance=~"$instance"}[$__rate_interval]))) / on (instance) process_max_fds and socks5d_stat{key=~"log_dropped|log_errors"} offset 1h > bool 0`)
	if strings.Join(names, ",") != "socks5d_user_bytes_total,process_max_fds,socks5d_stat" || strings.Join(keys, ",") != "log_dropped,log_errors" {
		t.Fatalf("names %q, keys %q", names, keys)
	}
}

// Every metric the Grafana dashboard and the Prometheus rules query is one
// a running server exports (or one Prometheus makes: up, or a recording
// rule of the rules file), and every STATS key they name is on /metrics.
func TestDashboardAndRulesUseExportedMetrics(t *testing.T) {
	s, url := metricsServer(t)
	transfer(t, dialer(t, s.socks, "admin", "password"), 64<<10)
	if _, err := dialer(t, s.socks, "admin", "wrong").Dial("tcp", testnet.Echo(t)); err == nil {
		t.Fatal("wrong password accepted")
	}
	stop := streaming(t, s.socks)
	defer stop()
	// Per-user series exist once a user's connection has ended.
	var text string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		text = scrapeText(t, url)
		if strings.Contains(text, `socks5d_user_bytes_total{`) || time.Now().After(deadline) {
			break
		}
	}
	exported := map[string]bool{"up": true}
	statKeys := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name := l[:strings.IndexAny(l, "{ ")]
		exported[name] = true
		if m := regexp.MustCompile(`^socks5d_stat\{(?:instance_name="[^"]*",)?key="([^"]+)"\}`).FindStringSubmatch(l); m != nil {
			statKeys[m[1]] = true
		}
	}

	type query struct{ where, expr string }
	var queries []query
	// The dashboard: every target's expr.
	body, err := os.ReadFile(filepath.Join(configsDir(t), "grafana", "socks5d.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(body, &dash); err != nil {
		t.Fatalf("socks5d.json: %v", err)
	}
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries = append(queries, query{"dashboard panel " + p.Title, tg.Expr})
		}
	}
	// The rules: every expr; recording rules may use each other.
	rules, err := os.ReadFile(filepath.Join(configsDir(t), "prometheus", "socks5d.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*- record: (\S+)`).FindAllStringSubmatch(string(rules), -1) {
		recorded[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`(?ms)^\s*expr: (\|\n.*?\n\s*(?:for|labels):|[^\n]*)`).FindAllStringSubmatch(string(rules), -1) {
		queries = append(queries, query{"rules", m[1]})
	}
	if len(queries) < 30 {
		t.Fatalf("only %d queries found in the dashboard and the rules", len(queries))
	}

	covered := map[string]bool{}
	for _, q := range queries {
		names, keys := promqlNames(q.expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", q.where, q.expr)
		}
		for _, n := range names {
			covered[n] = true
			if !exported[n] && !(q.where == "rules" && recorded[n]) {
				t.Errorf("%s queries %s, which the server does not export: %q", q.where, n, q.expr)
			}
		}
		for _, k := range keys {
			if !statKeys[k] {
				t.Errorf("%s names STATS key %q, not on /metrics: %q", q.where, k, q.expr)
			}
		}
	}
	// The dashboard covers what the issue asks for.
	for _, n := range []string{"socks5d_bytes_total", "socks5d_connections_open", "socks5d_connect_latency_seconds_bucket",
		"socks5d_auth_failures_total", "socks5d_user_bytes_total"} {
		if !covered[n] {
			t.Errorf("neither the dashboard nor the rules use %s", n)
		}
	}
}
