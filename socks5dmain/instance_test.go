package socks5dmain

import (
	"net"
	"os"
	"strings"
	"testing"
)

// Every sample on /metrics carries the instance's name: instance_name
// when configured, else the host name and the SOCKS port.
func TestMetricsCarryInstanceName(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ config, want string }{
		{"", ""}, // the default: host name and SOCKS port, known once listening
		{"instance_name: proxy-1.example\n", "proxy-1.example"},
	} {
		cfg := writeConfig(t, tt.config+"metrics:\n  enabled: true\n  port: 0\n")
		s := startServer(t, append([]string{"-c", cfg, "-u", "admin:password"}, loopbackArgs...)...)
		want := tt.want
		if want == "" {
			_, port, _ := net.SplitHostPort(s.socks)
			want = net.JoinHostPort(host, port)
		}
		if !strings.Contains(s.log.String(), "instance="+want) {
			t.Errorf("the start-up log does not name instance %s:\n%s", want, s.log)
		}
		m := s.logged(t, metricsRE, "metrics address")
		transfer(t, dialer(t, s.socks, "admin", "password"), 1<<10)
		families := scrape(t, m[1])
		samples := 0
		for name, f := range families {
			for _, m := range f.GetMetric() {
				samples++
				if got := labelOf(m, "instance_name"); got != want {
					t.Errorf("%s has instance_name %q, want %q", name, got, want)
				}
			}
		}
		for _, name := range []string{"socks5d_stat", "go_goroutines", "process_open_fds"} {
			if families[name] == nil {
				t.Errorf("/metrics lacks %s", name)
			}
		}
		if samples < 50 {
			t.Errorf("only %d samples on /metrics", samples)
		}
	}
}
