package socks5dmain

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/socks5d/socks5d/internal/testnet"
)

// proxiedConn connects to the proxy from 127.0.0.1 (the "balancer"),
// sends a PROXY header of version naming src as the client, then
// authenticates as admin/password and asks to CONNECT to target. It
// returns the conn and the CONNECT reply's code, or -1 when the proxy
// closed the connection first.
func proxiedConn(t *testing.T, proxyAddr string, version byte, src, target string) (net.Conn, int) {
	t.Helper()
	return proxiedAuth(t, proxyAddr, version, src, "admin", "password", target)
}

// proxiedAuth is proxiedConn as user with pass; a refused authentication
// returns -2.
func proxiedAuth(t *testing.T, proxyAddr string, version byte, src, user, pass, target string) (net.Conn, int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	h := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), c.RemoteAddr())
	if _, err := h.WriteTo(c); err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(target)
	ip := ap.Addr().As4()
	msg := []byte{5, 1, 2, 1, byte(len(user))}
	msg = append(msg, user...)
	msg = append(msg, byte(len(pass)))
	msg = append(msg, pass...)
	msg = append(msg, 5, 1, 0, 1, ip[0], ip[1], ip[2], ip[3], byte(ap.Port()>>8), byte(ap.Port()))
	if _, err := c.Write(msg); err != nil {
		return c, -1
	}
	var reply [4 + 10]byte
	if _, err := io.ReadFull(c, reply[:4]); err != nil {
		return c, -1
	}
	if reply[3] != 0 {
		return c, -2
	}
	if _, err := io.ReadFull(c, reply[4:]); err != nil {
		return c, -1
	}
	_ = c.SetDeadline(time.Time{})
	return c, int(reply[5])
}

// Through a balancer speaking the PROXY protocol (v1 and v2), every view
// of the server sees the client the header names, not the balancer: a
// per-IP limit counts 127.0.0.99 and 127.0.0.98 apart although both come
// from 127.0.0.1; SESSIONS and LOGS show them; the connection log keeps
// the balancer beside them as via_ip/via_port. The LOGS line keeps its
// format.
func TestProxyProtocolClientEverywhere(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, `
data_dir: `+dir+`
socks:
  proxy_protocol:
    trusted: [127.0.0.1]
chain:
  - use: limits
    per_ip: 1
  - use: auth
  - use: accounting
  - use: connlog
  - use: iobuf
`)
	s := startServer(t, append([]string{"-c", cfg, "-u", "admin:password"}, loopbackArgs...)...)
	admin := login(t, s.pctpAddr(t))
	echo := testnet.Echo(t)

	first, code := proxiedConn(t, s.socks, 1, "127.0.0.99:40001", echo)
	if code != 0 {
		t.Fatalf("first client (v1): reply %d", code)
	}
	if _, code := proxiedConn(t, s.socks, 2, "127.0.0.99:40002", echo); code != -1 {
		t.Fatalf("a second connection from 127.0.0.99 passed per_ip: 1 (reply %d)", code)
	}
	other, code := proxiedConn(t, s.socks, 2, "127.0.0.98:40003", echo)
	if code != 0 {
		t.Fatalf("another client (v2) from the same balancer: reply %d", code)
	}
	sessions := strings.Join(do(t, admin, "SESSIONS").Lines, "\n")
	for _, want := range []string{" 127.0.0.99:40001 ", " 127.0.0.98:40003 "} {
		if !strings.Contains(sessions, want) {
			t.Errorf("SESSIONS lacks %q:\n%s", want, sessions)
		}
	}
	if strings.Contains(sessions, "127.0.0.1:") && !strings.Contains(sessions, " "+echo+" ") {
		t.Errorf("SESSIONS shows the balancer:\n%s", sessions)
	}
	st := stats(t, admin)
	if st["proxy_protocol_accepted"] != 3 || st["limit_refused_per_ip"] != 1 {
		t.Errorf("STATS proxy_protocol_accepted=%d limit_refused_per_ip=%d, want 3 and 1", st["proxy_protocol_accepted"], st["limit_refused_per_ip"])
	}
	balancer := map[string]string{"40001": first.LocalAddr().String(), "40003": other.LocalAddr().String()}
	first.Close()
	other.Close()

	// LOGS and the file, once the two records are written (limits comes
	// before connlog: the refused connection is counted, not logged).
	var logs []string
	var lines []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		logs = do(t, admin, "LOGS").Lines
		lines = readJSONLines(t, filepath.Join(dir, "connections.jsonl"))
		if len(lines) == 2 && len(logs) == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var clients []string
	for _, l := range logs {
		if f := strings.Fields(l); len(f) > 4 {
			clients = append(clients, f[3]+":"+f[4])
		}
	}
	slices.Sort(clients)
	if strings.Join(clients, " ") != "127.0.0.98:40003 127.0.0.99:40001" {
		t.Errorf("LOGS clients %v, want the headers':\n%s", clients, strings.Join(logs, "\n"))
	}
	if len(lines) != 2 {
		t.Fatalf("%d lines in connections.jsonl, want 2", len(lines))
	}
	for _, l := range lines {
		port := jsonNumber(l["client_port"])
		via, _ := l["via_ip"].(string)
		via = net.JoinHostPort(via, jsonNumber(l["via_port"]))
		if ip := l["client_ip"]; ip != "127.0.0.99" && ip != "127.0.0.98" {
			t.Errorf("record client %v:%s, want the header's", ip, port)
		}
		if via != balancer[port] {
			t.Errorf("record of client port %s: via %s, want the balancer's socket %s", port, via, balancer[port])
		}
	}
}

func jsonNumber(v any) string {
	f, _ := v.(float64)
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// readJSONLines reads a JSON-lines file; a missing file is empty.
func readJSONLines(t *testing.T, name string) []map[string]any {
	t.Helper()
	f, err := os.Open(name)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue // a line being written
		}
		out = append(out, m)
	}
	return out
}

// The auth stage bans the client the header names, not the balancer: after
// a burst of wrong passwords from 127.0.0.97, its right password is
// refused, while 127.0.0.96 through the same balancer logs in.
func TestProxyProtocolBansTheHeaderClient(t *testing.T) {
	cfg := writeConfig(t, `
socks:
  proxy_protocol:
    trusted: [127.0.0.0/8]
chain:
  - use: auth
    max_failures: 2
    failure_window: 1m
    ban: 1m
  - use: accounting
`)
	s := startServer(t, append([]string{"-c", cfg, "-u", "admin:password"}, loopbackArgs...)...)
	echo := testnet.Echo(t)
	for i := range 3 {
		if _, code := proxiedAuth(t, s.socks, 2, "127.0.0.97:5000", "admin", "wrong", echo); code != -2 {
			t.Fatalf("wrong password %d: code %d", i+1, code)
		}
	}
	if _, code := proxiedAuth(t, s.socks, 2, "127.0.0.97:5001", "admin", "password", echo); code != -2 {
		t.Errorf("the banned client logged in (code %d)", code)
	}
	if _, code := proxiedAuth(t, s.socks, 1, "127.0.0.96:5002", "admin", "password", echo); code != 0 {
		t.Errorf("another client through the same balancer: code %d", code)
	}
	st := stats(t, login(t, s.pctpAddr(t)))
	if st["auth_bans"] != 1 || st["auth_banned_now"] != 1 {
		t.Errorf("auth_bans %d, auth_banned_now %d, want 1 and 1", st["auth_bans"], st["auth_banned_now"])
	}
	if !strings.Contains(s.log.String(), "client_ip=127.0.0.97") {
		t.Errorf("the ban's log line does not name 127.0.0.97:\n%s", s.log)
	}
}
