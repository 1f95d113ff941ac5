package socks5dmain

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var metricsRE = regexp.MustCompile(`metrics listening: address=(\S+)`)

// The Prometheus endpoint, off by default, serves the same counters as
// STATS, and the Go runtime's.
func TestMetricsEndpoint(t *testing.T) {
	s := startServer(t, append([]string{"-u", "admin:password"}, loopbackArgs...)...)
	if metricsRE.MatchString(s.log.String()) {
		t.Fatal("the metrics endpoint is on by default")
	}
	cfg := writeConfig(t, "metrics:\n  enabled: true\n  port: 0\n")
	s = startServer(t, append([]string{"-c", cfg, "-u", "admin:password"}, loopbackArgs...)...)
	m := s.logged(t, metricsRE, "metrics address")
	if !strings.HasPrefix(m[1], "http://127.0.0.1:") {
		t.Fatalf("metrics not on loopback by default: %s", m[1])
	}
	transfer(t, dialer(t, s.socks, "admin", "password"), 1<<20)
	if _, err := dialer(t, s.socks, "admin", "wrong").Dial("tcp", "127.0.0.1:9"); err == nil {
		t.Fatal("wrong password accepted")
	}

	// A connection is counted when its handler returns, a moment after the
	// client saw its end: scrape until both are in (bounded).
	var families map[string]*dto.MetricFamily
	var conns, bytes, statConns float64
	for deadline := time.Now().Add(5 * time.Second); ; {
		families = scrape(t, m[1])
		conns, bytes = 0, 0
		for _, m := range families["socks5d_connections_total"].GetMetric() {
			conns += m.GetCounter().GetValue()
		}
		for _, m := range families["socks5d_bytes_total"].GetMetric() {
			bytes += m.GetCounter().GetValue()
		}
		for _, m := range families["socks5d_stat"].GetMetric() {
			if labelOf(m, "key") == "total_connections" {
				statConns = m.GetUntyped().GetValue()
			}
		}
		if (conns == 2 && statConns == 2) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, name := range []string{"socks5d_connections_total", "socks5d_bytes_total", "socks5d_connect_latency_seconds", "go_goroutines", "process_open_fds"} {
		if families[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if conns != 2 {
		t.Errorf("socks5d_connections_total sums to %v, want 2", conns)
	}
	if bytes < 2<<20 {
		t.Errorf("socks5d_bytes_total sums to %v, want at least 2 MiB", bytes)
	}
	// The STATS lines are on /metrics too, from the same counters.
	if statConns != conns {
		t.Errorf("socks5d_stat{key=\"total_connections\"} = %v, want %v", statConns, conns)
	}
	// STATS agrees (accounting, outside metrics in the chain, counts a
	// connection a moment later).
	admin := login(t, s.pctpAddr(t))
	st := stats(t, admin)
	for deadline := time.Now().Add(5 * time.Second); float64(st["total_connections"]) != conns && time.Now().Before(deadline); st = stats(t, admin) {
		time.Sleep(10 * time.Millisecond)
	}
	if float64(st["total_connections"]) != conns || float64(st["total_bytes_proxied"]) != bytes {
		t.Errorf("STATS (%d connections, %d bytes) and /metrics (%v, %v) disagree", st["total_connections"], st["total_bytes_proxied"], conns, bytes)
	}
}

// labelOf is the value of m's label name ("" when it has none).
func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// scrape fetches and parses a /metrics page.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("unparseable /metrics: %v\n%s", err, body)
	}
	return families
}

// get fetches url and returns the status and the body.
func get(t *testing.T, url string) (int, string) {
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
	return resp.StatusCode, string(body)
}

// /healthz answers while the process runs; /ready is 200 while the server
// takes connections and 503, with the reason, once it drains (the metrics
// listener serves through the drain).
func TestHealthEndpoints(t *testing.T) {
	cfg := writeConfig(t, "metrics:\n  enabled: true\n  port: 0\nsocks:\n  drain_timeout: 20s\n"+lcAliceConfig)
	p := startInProcess(t, append([]string{"-c", cfg}, loopbackArgs...), listenRE, metricsRE)
	socks, base := p.found[0], strings.TrimSuffix(p.found[1], "/metrics")
	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	// Ready once the accept loop runs (a moment after the log line).
	code, body := get(t, base+"/ready")
	for deadline := time.Now().Add(5 * time.Second); code != http.StatusOK && time.Now().Before(deadline); code, body = get(t, base+"/ready") {
		time.Sleep(5 * time.Millisecond)
	}
	if code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/ready while serving = %d %q", code, body)
	}

	// A transfer in flight keeps the drain going.
	held := lcOpenHeld(t, socks)
	p.cancel()
	code, body = get(t, base+"/ready")
	for deadline := time.Now().Add(5 * time.Second); code == http.StatusOK && time.Now().Before(deadline); code, body = get(t, base+"/ready") {
		time.Sleep(5 * time.Millisecond)
	}
	if code != http.StatusServiceUnavailable || body != "not ready: draining, not accepting new connections\n" {
		t.Fatalf("/ready while draining = %d %q", code, body)
	}
	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz while draining = %d %q", code, body)
	}
	held.Close()
	p.wait(t)
}

// Two copies of a stage print their STATS under their names, once each,
// and /metrics exports every line (the chain's compile refuses a
// duplicate key, so none is dropped there).
func TestTwoAccountingStagesDistinctKeys(t *testing.T) {
	cfg := writeConfig(t, `metrics:
  enabled: true
  port: 0
chain:
  - use: auth
  - use: accounting
    name: a
  - use: accounting
    name: b
`)
	s := startServer(t, append([]string{"-c", cfg, "-u", "admin:password"}, loopbackArgs...)...)
	m := s.logged(t, metricsRE, "metrics address")
	transfer(t, dialer(t, s.socks, "admin", "password"), 1<<10)
	admin := login(t, s.pctpAddr(t))
	st := stats(t, admin)
	for deadline := time.Now().Add(5 * time.Second); (st["a.total_connections"] != 1 || st["b.total_connections"] != 1) && time.Now().Before(deadline); st = stats(t, admin) {
		time.Sleep(10 * time.Millisecond)
	}
	if st["a.total_connections"] != 1 || st["b.total_connections"] != 1 {
		t.Errorf("STATS = %v, want a.total_connections and b.total_connections 1", st)
	}
	// STATS always shows the seed's four keys; with no accounting stage
	// named by its type they are 0.
	if st["total_connections"] != 0 {
		t.Errorf("total_connections = %d, want 0 (no stage prints it)", st["total_connections"])
	}
	seen := map[string]int{}
	for _, mm := range scrape(t, m[1])["socks5d_stat"].GetMetric() {
		seen[labelOf(mm, "key")]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("socks5d_stat{key=%q} appears %d times, want once", k, n)
		}
	}
	for _, k := range []string{"a.total_connections", "b.total_connections", "a.current_connections", "b.current_connections"} {
		if seen[k] != 1 {
			t.Errorf("/metrics lacks socks5d_stat{key=%q}", k)
		}
	}
}

// metrics.pprof serves Go's profiles on the metrics listener; without it
// there are none.
func TestPprofEndpoint(t *testing.T) {
	for _, on := range []bool{false, true} {
		cfg := writeConfig(t, fmt.Sprintf("metrics:\n  enabled: true\n  port: 0\n  pprof: %v\n", on)+lcAliceConfig)
		p := startInProcess(t, append([]string{"-c", cfg}, loopbackArgs...), listenRE, metricsRE)
		base := strings.TrimSuffix(p.found[1], "/metrics")
		code, body := get(t, base+"/debug/pprof/heap?debug=1")
		switch {
		case on && (code != http.StatusOK || !strings.Contains(body, "heap profile:")):
			t.Errorf("pprof on: /debug/pprof/heap = %d %.60q", code, body)
		case !on && code != http.StatusNotFound:
			t.Errorf("pprof off: /debug/pprof/heap = %d, want 404", code)
		}
		if code, _ := get(t, base+"/metrics"); code != http.StatusOK {
			t.Errorf("/metrics = %d", code)
		}
		p.cancel()
		p.wait(t)
	}
}
