package haproxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/proxy"

	_ "github.com/socks5d/socks5d/builtin"
	"github.com/socks5d/socks5d/core"
	"github.com/socks5d/socks5d/internal/testnet"
	"github.com/socks5d/socks5d/testbed/haproxy"
)

// startSOCKS5d serves socks5d in-process on loopback with a trusted
// balancer at 127.0.0.1 and returns its runtime and address.
func startSOCKS5d(t *testing.T) (*core.Runtime, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "proxy.yaml")
	if err := os.WriteFile(path, []byte(`
data_dir: `+filepath.Join(dir, "data")+`
socks:
  address: 127.0.0.1
  port: 0
  proxy_protocol:
    trusted: [127.0.0.1]
pctp:
  port: 0
users:
  - {name: alice, password: wonderland, role: admin}
chain:
  - use: limits
    per_ip: 4
  - use: auth
  - use: accounting
  - use: connlog
    file: ""
  - use: iobuf
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := core.LoadConfig(core.LoadOptions{File: path})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := core.NewRuntime(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rt.ServeSOCKS(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		sctx, stop := context.WithTimeout(context.Background(), time.Second)
		defer stop()
		rt.Shutdown(sctx)
		_ = rt.Close()
	})
	return rt, ln.Addr().String()
}

func stat(rt *core.Runtime, key string) int64 {
	for _, s := range rt.Admin().Stats() {
		if s.Key == key {
			return s.Value
		}
	}
	return -1
}

// Real haproxy in TCP mode in front of one socks5d, sending PROXY v2 (with
// health checks that send a LOCAL header) on one frontend and v1 on
// another: a client connecting to haproxy from 127.0.0.99 is seen by
// socks5d as 127.0.0.99, port included, in SESSIONS and in the connection
// records, with haproxy's socket kept as Via; 1 MiB goes through each way
// intact; the health checks are accepted, never refused.
func TestHAProxySendsTheClientAddress(t *testing.T) {
	rt, addr := startSOCKS5d(t)
	hp := haproxy.Start(t,
		haproxy.Server{Addr: addr, Send: "send-proxy-v2", Check: true},
		haproxy.Server{Addr: addr, Send: "send-proxy"},
	)
	target := testnet.Echo(t)
	client := netip.MustParseAddr("127.0.0.99")
	for i, front := range hp.Frontends {
		d, err := proxy.SOCKS5("tcp", front, &proxy.Auth{User: "alice", Password: "wonderland"},
			&net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: client.AsSlice()}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := d.Dial("tcp", target)
		if err != nil {
			t.Fatalf("frontend %d: %v\n%s", i, err, hp.Output())
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		// The client's own socket toward haproxy: what the header names.
		src := netip.MustParseAddrPort(c.LocalAddr().String())
		var listed bool
		for _, si := range rt.Admin().Sessions() {
			listed = listed || si.Client == src
		}
		if src.Addr() != client || !listed {
			t.Fatalf("frontend %d: SESSIONS does not list the client %v: %+v", i, src, rt.Admin().Sessions())
		}
		payload := make([]byte, 1<<20)
		_, _ = rand.Read(payload)
		go func() { _, _ = c.Write(payload) }()
		got := make([]byte, len(payload))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("frontend %d: echo through haproxy: %v", i, err)
		}
		c.Close()

		var found bool
		for deadline := time.Now().Add(10 * time.Second); !found && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			for _, r := range rt.Admin().Records(0) {
				if r.Client == src {
					found = true
					if r.Via.Addr() != netip.MustParseAddr("127.0.0.1") || r.Via == src || r.Up != 1<<20 || r.Down != 1<<20 {
						t.Errorf("frontend %d: record via %v, up %d, down %d", i, r.Via, r.Up, r.Down)
					}
				}
			}
		}
		if !found {
			t.Errorf("frontend %d: no connection record for %v", i, src)
		}
	}
	// Health checks (LOCAL headers) arrive every 100ms: a few of them are
	// accepted, and nothing from haproxy is ever refused.
	for deadline := time.Now().Add(10 * time.Second); stat(rt, "proxy_protocol_accepted") < 5 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := stat(rt, "proxy_protocol_accepted"); n < 5 {
		t.Errorf("proxy_protocol_accepted = %d: haproxy's checks did not come", n)
	}
	for _, key := range []string{"proxy_protocol_missing", "proxy_protocol_invalid", "proxy_protocol_refused"} {
		if n := stat(rt, key); n != 0 {
			t.Errorf("%s = %d\n%s", key, n, hp.Output())
		}
	}
}
