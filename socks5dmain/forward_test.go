package socks5dmain

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The forward stage end to end: real socks5d instances chained on
// loopback, an upstream that refuses, a bound local address, an HTTP
// CONNECT upstream, an upstream dying mid-relay, UDP through an upstream.

// refusedPort returns a loopback address nothing listens on.
func refusedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// forwardServer starts socks5d with admin/password and the chain auth,
// accounting, forward (with the given YAML lines), connlog.
func forwardServer(t *testing.T, forward string) (*server, string) {
	t.Helper()
	cfg, _ := filepath.Abs(writeConfig(t, `
chain:
  - use: auth
  - use: accounting
  - use: forward
`+forward+`
  - use: connlog
`))
	return startServer(t, append([]string{"-c", cfg, "-u", "admin:password"}, loopbackArgs...)...), cfg
}

// A chain of two socks5d instances (the first wants a password) carries
// 16 MiB each way intact, as the fallback of a rule whose own upstream
// refuses; the refusing upstream is counted, then skipped; RULES, SESSIONS
// and the connection log name the egress, never the password.
func TestForwardChainOfTwo(t *testing.T) {
	last := startServer(t, append([]string{"-c", mustAbs(t, writeConfig(t, "chain:\n  - use: auth\n    anonymous: true\n"))}, loopbackArgs...)...)
	first := startServer(t, append([]string{"-c", mustAbs(t, writeConfig(t, "chain:\n  - use: auth\n")), "-u", "up:secret"}, loopbackArgs...)...)
	refused := refusedPort(t)
	f, cfg := forwardServer(t, fmt.Sprintf(`    failures: 1
    backoff: 1h
    rules:
      - users: [admin]
        via: ["socks5://%s"]
        fallback: {via: ["socks5://up:secret@%s", "socks5://%s"]}
`, refused, first.socks, last.socks))

	d := dialer(t, f.socks, "admin", "password")
	transfer(t, d, 16<<20)
	transfer(t, d, 1<<10) // the refusing upstream is skipped now

	c := login(t, f.pctpAddr(t))
	st := stats(t, c)
	refusedKey := "forward_upstream_socks5_" + strings.ReplaceAll(refused, ":", "_")
	firstKey := "forward_upstream_socks5_" + strings.ReplaceAll(first.socks, ":", "_")
	lastKey := "forward_upstream_socks5_" + strings.ReplaceAll(last.socks, ":", "_")
	for key, want := range map[string]int64{
		refusedKey + "_failures": 1, refusedKey + "_skipped": 1, refusedKey + "_connects": 0,
		firstKey + "_connects": 2, lastKey + "_connects": 2, firstKey + "_failures": 0,
		"forward_fallbacks": 2, "forward_via": 2, "forward_direct": 0,
	} {
		if st[key] != want {
			t.Errorf("STATS %s = %d, want %d", key, st[key], want)
		}
	}
	rules := do(t, c, "RULES forward").Lines
	wantRule := fmt.Sprintf("1 via=socks5://%s users=admin fallback=socks5://up:***@%s,socks5://%s", refused, first.socks, last.socks)
	if len(rules) != 1 || rules[0] != wantRule {
		t.Errorf("RULES forward = %q, want [%q]", rules, wantRule)
	}

	// A held connection shows its egress at the end of its SESSIONS line.
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	held, err := d.Dial("tcp", target.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sessions := do(t, c, "SESSIONS").Lines
	held.Close()
	wantEgress := fmt.Sprintf(" egress=fallback:via=socks5://up:***@%s,socks5://%s", first.socks, last.socks)
	found := false
	for _, l := range sessions {
		found = found || strings.Contains(l, " "+target.Addr().String()+" ") && (strings.HasSuffix(l, wantEgress) || strings.Contains(l, wantEgress+" listener="))
	}
	if !found {
		t.Errorf("SESSIONS = %q, want the held connection's line to end %q (before listener=)", sessions, wantEgress)
	}

	// The connection log's JSON records say so too.
	recs, err := os.ReadFile(filepath.Join(filepath.Dir(cfg), "data", "connections.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Egress string }
	line, _, _ := strings.Cut(string(recs), "\n")
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Egress != strings.TrimPrefix(wantEgress, " egress=") {
		t.Errorf("record %s: egress %q (%v)", line, rec.Egress, err)
	}
	for name, text := range map[string]string{"log": f.log.String(), "connection log": string(recs)} {
		if strings.Contains(text, "secret") {
			t.Errorf("the upstream's password appears in the %s", name)
		}
	}
	if !strings.Contains(f.log.String(), "upstream failed") {
		t.Errorf("no log line for the refusing upstream:\n%s", f.log)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A user whose rule binds 127.0.0.2 is seen by the destination as
// 127.0.0.2; a rule added over PCTP applies to the next connection and is
// saved in the state file (mode 0600).
func TestForwardBindAddress(t *testing.T) {
	f, cfg := forwardServer(t, "    rules:\n      - users: [admin]\n        bind: 127.0.0.2\n")
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	d := dialer(t, f.socks, "admin", "password")
	from := func() string {
		t.Helper()
		c, err := d.Dial("tcp", target.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = target.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
		p, err := target.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		host, _, _ := net.SplitHostPort(p.RemoteAddr().String())
		return host
	}
	if got := from(); got != "127.0.0.2" {
		t.Fatalf("the destination saw %s, want 127.0.0.2", got)
	}
	c := login(t, f.pctpAddr(t))
	do(t, c, "RULE ADD forward 1 bind=127.0.0.3 users=admin")
	if got := from(); got != "127.0.0.3" {
		t.Fatalf("after RULE ADD the destination saw %s, want 127.0.0.3", got)
	}
	state := filepath.Join(filepath.Dir(cfg), "data", "state.json")
	fi, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := os.ReadFile(state)
	if fi.Mode().Perm() != 0o600 || !strings.Contains(string(body), "127.0.0.3") {
		t.Errorf("state file %v:\n%s", fi.Mode(), body)
	}
}

// connectProxy is an HTTP CONNECT proxy on net/http's server: it wants
// Basic credentials hu:hp, dials the target and relays. kill closes every
// connection it relays.
type connectProxy struct {
	addr  string
	mu    sync.Mutex
	conns []net.Conn
}

func newConnectProxy(t *testing.T) *connectProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); p.kill() })
	return p
}

func (p *connectProxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("Proxy-Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte("hu:hp")) {
		w.Header().Set("Proxy-Authenticate", `Basic realm="test"`)
		http.Error(w, "credentials", http.StatusProxyAuthRequired)
		return
	}
	dst, err := net.DialTimeout("tcp", r.Host, 5*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		dst.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, c, dst)
	p.mu.Unlock()
	ok := &http.Response{StatusCode: http.StatusOK, ProtoMajor: 1, ProtoMinor: 1, Request: r}
	if err := ok.Write(c); err != nil {
		c.Close()
		dst.Close()
		return
	}
	upDone := make(chan struct{})
	go func() { _, _ = io.Copy(dst, brw); _ = dst.(*net.TCPConn).CloseWrite(); close(upDone) }()
	_, _ = io.Copy(c, dst)
	_ = c.(*net.TCPConn).CloseWrite()
	<-upDone
	c.Close()
	dst.Close()
}

func (p *connectProxy) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// An HTTP CONNECT upstream carries a transfer intact; one that refuses
// the credentials gets the client 0x01; and when the upstream dies in the
// middle of a relay, the client is told at once (the stream ends) and,
// once it closes, the session is gone.
func TestForwardHTTPConnectUpstream(t *testing.T) {
	up := newConnectProxy(t)
	f, _ := forwardServer(t, fmt.Sprintf(`    rules:
      - users: [admin]
        ports: [1-9]
        via: ["http://hu:wrong@%s"]
      - users: [admin]
        via: ["http://hu:hp@%s"]
`, up.addr, up.addr))
	d := dialer(t, f.socks, "admin", "password")
	transfer(t, d, 1<<20)

	if _, err := d.Dial("tcp", "127.0.0.1:7"); err == nil || !strings.Contains(err.Error(), "general SOCKS server failure") {
		t.Errorf("through an upstream that wants other credentials: %v, want reply 0x01", err)
	}

	// A destination that streams until told to stop.
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		c, err := target.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 32<<10)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	c, err := d.Dial("tcp", target.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.ReadFull(c, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	up.kill()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the relay went on after its upstream died")
	}
	c.Close() // the client, told the stream ended, closes
	admin := login(t, f.pctpAddr(t))
	for i := 0; ; i++ {
		lines := do(t, admin, "SESSIONS").Lines
		if len(lines) == 0 {
			break
		}
		if i == 200 {
			t.Fatalf("sessions still open after the upstream died: %q", lines)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// A BIND or UDP ASSOCIATE whose rule names an upstream is refused with
// 0x07 and a log line saying why.
func TestForwardBindUDPThroughUpstreamRefused(t *testing.T) {
	f, _ := forwardServer(t, "    rules:\n      - users: [admin]\n        via: [\"socks5://"+refusedPort(t)+"\"]\n")
	for _, cmd := range []byte{2, 3} { // BIND, UDP ASSOCIATE
		c, err := net.DialTimeout("tcp", f.socks, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		read := func(n int) []byte {
			t.Helper()
			b := make([]byte, n)
			if _, err := io.ReadFull(br, b); err != nil {
				t.Fatal(err)
			}
			return b
		}
		_, _ = c.Write([]byte{5, 1, 2})
		if m := read(2); m[1] != 2 {
			t.Fatalf("method %v", m)
		}
		_, _ = c.Write(append(append([]byte{1, 5}, "admin"...), append([]byte{8}, "password"...)...))
		if a := read(2); a[1] != 0 {
			t.Fatalf("auth %v", a)
		}
		_, _ = c.Write([]byte{5, cmd, 0, 1, 127, 0, 0, 1, 0, 9}) // 127.0.0.1:9
		if r := read(4); r[1] != 0x07 {
			t.Fatalf("command %d through an upstream: reply %#x, want 0x07", cmd, r[1])
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(f.log.String(), "command refused") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for each refusal:\n%s", f.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
