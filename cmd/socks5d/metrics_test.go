package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

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
	m := metricsRE.FindStringSubmatch(s.log.String())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", s.log)
	}
	if !strings.HasPrefix(m[1], "http://127.0.0.1:") {
		t.Fatalf("metrics not on loopback by default: %s", m[1])
	}
	transfer(t, dialer(t, s.socks, "admin", "password"), 1<<20)
	if _, err := dialer(t, s.socks, "admin", "wrong").Dial("tcp", "127.0.0.1:9"); err == nil {
		t.Fatal("wrong password accepted")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m[1], nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("unparseable /metrics: %v\n%s", err, body)
	}
	for _, name := range []string{"socks5d_connections_total", "socks5d_bytes_total", "socks5d_connect_latency_seconds", "go_goroutines", "process_open_fds"} {
		if families[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	var conns, bytes float64
	for _, m := range families["socks5d_connections_total"].GetMetric() {
		conns += m.GetCounter().GetValue()
	}
	for _, m := range families["socks5d_bytes_total"].GetMetric() {
		bytes += m.GetCounter().GetValue()
	}
	if conns != 2 {
		t.Errorf("socks5d_connections_total sums to %v, want 2", conns)
	}
	if bytes < 2<<20 {
		t.Errorf("socks5d_bytes_total sums to %v, want at least 2 MiB", bytes)
	}
	// STATS reads the same counters.
	st := stats(t, login(t, s.pctpAddr(t)))
	if float64(st["total_connections"]) != conns || float64(st["total_bytes_proxied"]) != bytes {
		t.Errorf("STATS (%d connections, %d bytes) and /metrics (%v, %v) disagree", st["total_connections"], st["total_bytes_proxied"], conns, bytes)
	}
}
