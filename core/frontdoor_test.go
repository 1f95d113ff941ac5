package core

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/proxy"

	"github.com/socks5d/socks5d/internal/testcert"
	"github.com/socks5d/socks5d/middleware"
)

// startListener starts a runtime serving one listener of spec on
// 127.0.0.1:0 (and nothing else) and returns it with its address.
func startListener(t testing.TB, cfg *Config, spec ListenerSpec) (*Runtime, string) {
	t.Helper()
	rt := newRuntime(t, cfg)
	return rt, serveListener(t, rt, spec)
}

// newRuntime makes a runtime that is shut down after the test's
// listeners stopped (cleanups run last first).
func newRuntime(t testing.TB, cfg *Config) *Runtime {
	t.Helper()
	rt, err := NewRuntime(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, stop := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer stop()
		rt.Shutdown(ctx)
	})
	return rt
}

// serveListener serves spec on a new 127.0.0.1:0 listener of rt.
func serveListener(t testing.TB, rt *Runtime, spec ListenerSpec) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rt.ServeListener(ctx, ln, spec)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("ServeListener did not return after cancel")
		}
	})
	return ln.Addr().String()
}

// testCert makes a certificate for 127.0.0.1, ::1 and localhost.
func testCert(t testing.TB, serial int64) (TLSFiles, *x509.CertPool) {
	t.Helper()
	c := testcert.New(t, serial)
	return TLSFiles{Cert: c.CertFile, Key: c.KeyFile}, c.Pool
}

// connectHTTP sends CONNECT target through the proxy with optional
// credentials and returns the conn and the response.
func connectHTTP(t testing.TB, c net.Conn, target, user, pass string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if user != "" {
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the CONNECT response: %v", err)
	}
	return resp, br
}

// echoThrough writes msg and expects it back.
func echoThrough(t testing.TB, w io.Writer, r io.Reader, msg string) {
	t.Helper()
	if _, err := io.WriteString(w, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != msg {
		t.Fatalf("echo = %q, %v; want %q", got, err, msg)
	}
}

// A mixed port serves SOCKS5 and HTTP CONNECT from the same users, and
// names itself in SESSIONS and STATS.
func TestMixedListenerServesSOCKSAndHTTP(t *testing.T) {
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	rt, addr := startListener(t, testConfig(stage("test.auth")), ListenerSpec{Name: "office", Protocol: ProtoMixed})

	c, err := socksDialer(t, addr, "bob", "builder").Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoThrough(t, c, c, "over socks")
	list := rt.Admin().Sessions()
	if len(list) != 1 || list[0].Listener != "office" || list[0].User != "bob" {
		t.Fatalf("SESSIONS = %+v, want bob's on office", list)
	}

	hc := rawConn(t, addr)
	resp, br := connectHTTP(t, hc, echo, "bob", "builder")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT status = %d, want 200", resp.StatusCode)
	}
	echoThrough(t, hc, br, "over http")
	if n := statOf(t, rt, "listener.office.http"); n != 1 {
		t.Errorf("listener.office.http = %d, want 1", n)
	}
	if n := statOf(t, rt, "listener.office.connections"); n != 2 {
		t.Errorf("listener.office.connections = %d, want 2", n)
	}
}

// Missing or wrong Proxy-Authorization gets 407 with a Basic challenge;
// the failure is a failed authentication like RFC 1929's.
func TestHTTPProxyAuthorization(t *testing.T) {
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	rt, addr := startListener(t, testConfig(stage("test.auth")), ListenerSpec{Name: "web", Protocol: ProtoHTTP})
	for _, tt := range []struct{ name, user, pass string }{
		{"missing", "", ""},
		{"wrong password", "bob", "wrong"},
		{"unknown user", "nobody", "builder"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := rawConn(t, addr)
			resp, br := connectHTTP(t, c, echo, tt.user, tt.pass)
			if resp.StatusCode != http.StatusProxyAuthRequired {
				t.Fatalf("status = %d, want 407", resp.StatusCode)
			}
			if got := resp.Header.Get("Proxy-Authenticate"); got != `Basic realm="socks5d"` {
				t.Errorf("Proxy-Authenticate = %q", got)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil || !resp.Close {
				t.Errorf("407 body: %v, close %v; want the body, then a close", err, resp.Close)
			}
			if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
				t.Errorf("after the 407: %v, want EOF", err)
			}
		})
	}
	if n := statOf(t, rt, "listener.web.http_auth_required"); n != 3 {
		t.Errorf("http_auth_required = %d, want 3", n)
	}
}

// The reply code a stage or the dial produces maps to an HTTP status.
func TestHTTPReplyMapping(t *testing.T) {
	for _, tt := range []struct {
		fail string
		want int
	}{
		{"denied", http.StatusForbidden},
		{"netunreach", http.StatusBadGateway},
		{"timeout", http.StatusGatewayTimeout},
		{"other", http.StatusBadGateway},
	} {
		t.Run(tt.fail, func(t *testing.T) {
			_, addr := startListener(t, testConfig(stage("test.auth"), stage("test.dial", "fail", tt.fail)), ListenerSpec{Name: "web", Protocol: ProtoHTTP})
			c := rawConn(t, addr)
			resp, _ := connectHTTP(t, c, "127.0.0.1:9", "bob", "builder")
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

// Go's net/http client with Proxy set: plain HTTP is forwarded in
// absolute form with the hop-by-hop fields removed both ways.
func TestHTTPForwardWithGoClient(t *testing.T) {
	// A raw origin: net/http's server would rewrite its Connection field.
	seenc := make(chan http.Header, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			seenc <- nil
			return
		}
		seenc <- req.Header
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: hop\r\nKeep-Alive: timeout=5\r\nX-End: kept\r\nContent-Length: 11\r\n\r\nhello "+req.URL.Path)
	}()
	originURL := "http://" + ln.Addr().String()
	rt, addr := startListener(t, testConfig(stage("test.auth")), ListenerSpec{Name: "web", Protocol: ProtoMixed})

	pu, _ := url.Parse("http://bob:builder@" + addr)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 10 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, originURL+"/path", nil)
	req.Header.Set("Connection", "X-Private")
	req.Header.Set("X-Private", "hop")
	req.Header.Set("X-Public", "end")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello /path" {
		t.Fatalf("response = %d %q", resp.StatusCode, body)
	}
	seen := <-seenc
	if seen.Get("X-Private") != "" || seen.Get("Proxy-Authorization") != "" || seen.Get("X-Public") != "end" {
		t.Errorf("origin saw %v: want X-Public, and neither X-Private nor Proxy-Authorization", seen)
	}
	if resp.Header.Get("X-Secret") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-End") != "kept" {
		t.Errorf("client saw %v: want X-End and no X-Secret", resp.Header)
	}
	// Through CONNECT too (an https:// URL would be; here a TLS origin).
	tlsOrigin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secure") }))
	defer tlsOrigin.Close()
	tr := tlsOrigin.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(pu)
	resp, err = (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(tlsOrigin.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "secure" {
		t.Fatalf("through CONNECT: %q", body)
	}
	if n := statOf(t, rt, "listener.web.http"); n != 2 {
		t.Errorf("listener.web.http = %d, want 2", n)
	}
}

// Bad input: a malformed request gets 400 and a close; a first byte that
// is neither SOCKS nor HTTP, or a ClientHello on a port without TLS, is
// closed at once; each is counted.
func TestFrontDoorBadInput(t *testing.T) {
	rt, addr := startListener(t, testConfig(stage("test.auth")), ListenerSpec{Name: "m", Protocol: ProtoMixed})

	c := rawConn(t, addr)
	io.WriteString(c, "GET /no-absolute-form HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("origin-form request: %v, %v; want 400", resp, err)
	}
	c = rawConn(t, addr)
	io.WriteString(c, "GARBAGE\x00\x01\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed request: %v, %v; want 400", resp, err)
	}
	c = rawConn(t, addr)
	c.Write([]byte{0x00, 0x01})
	expectClosed(t, c)
	c = rawConn(t, addr)
	c.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x05})
	expectClosed(t, c)
	for key, want := range map[string]int64{
		"listener.m.http_bad_requests": 2,
		"listener.m.bad_first_byte":    1,
		"listener.m.tls_on_plain_port": 1,
	} {
		if n := statOf(t, rt, key); n != want {
			t.Errorf("%s = %d, want %d", key, n, want)
		}
	}

	// An HTTP listener refuses SOCKS; a SOCKS listener counts HTTP.
	rt2, web := startListener(t, testConfig(stage("test.auth")), ListenerSpec{Name: "w", Protocol: ProtoHTTP})
	c = rawConn(t, web)
	c.Write([]byte{0x05, 0x01, 0x00})
	expectClosed(t, c)
	if n := statOf(t, rt2, "listener.w.bad_first_byte"); n != 1 {
		t.Errorf("SOCKS on the HTTP port: bad_first_byte = %d, want 1", n)
	}
	rt3, socks := startProxy(t, testConfig(stage("test.auth")))
	c = rawConn(t, socks)
	io.WriteString(c, "GET / HTTP/1.1\r\n\r\n")
	expectClosed(t, c)
	if n := statOf(t, rt3, "listener.socks.bad_first_byte"); n != 1 {
		t.Errorf("HTTP on the SOCKS port: bad_first_byte = %d, want 1", n)
	}
}

// A slow HTTP request gets the handshake timeout and a close.
func TestHTTPSlowRequestTimesOut(t *testing.T) {
	cfg := testConfig(stage("test.auth"))
	cfg.SOCKS.HandshakeTimeout = 200 * time.Millisecond
	_, addr := startListener(t, cfg, ListenerSpec{Name: "w", Protocol: ProtoHTTP})
	c := rawConn(t, addr)
	io.WriteString(c, "CONNECT 127.0.0.1:9 HTTP/1.1\r\n") // and never the end
	expectClosed(t, c)
}

// TLS: SOCKS over TLS and an HTTPS proxy on one listener, a certificate
// reloaded for new handshakes, and a failed handshake counted.
func TestTLSListener(t *testing.T) {
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	files, pool := testCert(t, 1)
	cs, err := NewCertStore(files)
	if err != nil {
		t.Fatal(err)
	}
	rt, addr := startListener(t, testConfig(stage("test.auth")), ListenerSpec{Name: "secure", Protocol: ProtoMixed, TLS: cs.Config()})
	clientTLS := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}

	// SOCKS over TLS.
	d, err := proxy.SOCKS5("tcp", addr, &proxy.Auth{User: "bob", Password: "builder"}, tlsDialer{clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	echoThrough(t, c, c, "socks over tls")
	c.Close()

	// An HTTPS proxy, as Go's client speaks to one.
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "via https proxy") }))
	defer origin.Close()
	pu, _ := url.Parse("https://bob:builder@" + addr)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: clientTLS}, Timeout: 10 * time.Second}
	resp, err := client.Get(origin.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "via https proxy" {
		t.Fatalf("body = %q", body)
	}

	// A new certificate applies to the next handshake.
	files2, pool2 := testCert(t, 2)
	files.Cert, files.Key = files2.Cert, files2.Key
	cs.files = files
	if err := cs.Reload(); err != nil {
		t.Fatal(err)
	}
	tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool2, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("after reload: %v", err)
	}
	if sn := tc.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); sn != 2 {
		t.Errorf("serial after reload = %d, want 2", sn)
	}
	tc.Close()
	// A reload that fails keeps the pair in force.
	cs.files.Key = filepath.Join(t.TempDir(), "missing.pem")
	if err := cs.Reload(); !errors.Is(err, ErrTLSFiles) {
		t.Fatalf("reload of a missing key: %v, want ErrTLSFiles", err)
	}

	// Plaintext on the TLS port fails the handshake, counted.
	before := statOf(t, rt, "listener.secure.tls_handshake_failures")
	pc := rawConn(t, addr)
	io.WriteString(pc, "CONNECT 127.0.0.1:9 HTTP/1.1\r\n\r\n")
	expectClosedOrAlert(t, pc)
	if n := statOf(t, rt, "listener.secure.tls_handshake_failures"); n != before+1 {
		t.Errorf("tls_handshake_failures = %d, want %d", n, before+1)
	}
}

// expectClosedOrAlert reads until the server closes (a TLS alert may come
// first).
func expectClosedOrAlert(t testing.TB, c net.Conn) {
	t.Helper()
	_, err := io.Copy(io.Discard, io.LimitReader(c, 1<<10))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection was not closed")
	}
}

// tlsDialer dials TLS for x/net/proxy.
type tlsDialer struct{ c *tls.Config }

func (d tlsDialer) Dial(network, addr string) (net.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, network, addr, d.c)
}

// A second listener with its own chain refuses what the main chain
// allows, over SOCKS and HTTP alike.
func TestListenerChains(t *testing.T) {
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	cfg := testConfig(stage("test.auth"))
	cfg.Chains = map[string][]StageConfig{"locked": {stage("test.auth"), stage("test.dial", "fail", "denied")}}
	rt := newRuntime(t, cfg)
	open := serveListener(t, rt, ListenerSpec{Name: "open", Protocol: ProtoMixed})
	locked := serveListener(t, rt, ListenerSpec{Name: "locked", Protocol: ProtoMixed, Chain: "locked"})

	c, err := socksDialer(t, open, "bob", "builder").Dial("tcp", echo)
	if err != nil {
		t.Fatalf("main chain: %v", err)
	}
	echoThrough(t, c, c, "allowed")
	c.Close()
	if _, err := socksDialer(t, locked, "bob", "builder").Dial("tcp", echo); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("locked chain over SOCKS: %v, want not allowed", err)
	}
	resp, _ := connectHTTP(t, rawConn(t, locked), echo, "bob", "builder")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("locked chain over HTTP: %d, want 403", resp.StatusCode)
	}
	// A reload keeps the named chain (and may change it).
	if err := rt.Update(func(d *Draft) error {
		d.Chains["locked"] = []StageConfig{stage("test.auth")}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c, err = socksDialer(t, locked, "bob", "builder").Dial("tcp", echo)
	if err != nil {
		t.Fatalf("after the update: %v", err)
	}
	c.Close()
	if err := rt.Update(func(d *Draft) error {
		d.Chains["locked"] = []StageConfig{stage("no.such.stage")}
		return nil
	}); err == nil || !strings.Contains(err.Error(), "chains.locked[0]") {
		t.Fatalf("a bad named chain: %v, want an error naming chains.locked[0]", err)
	}
	// A running listener's chain cannot be removed; it keeps serving.
	if err := rt.Update(func(d *Draft) error {
		delete(d.Chains, "locked")
		return nil
	}); !errors.Is(err, ErrChainInUse) {
		t.Fatalf("removing the locked chain: %v, want ErrChainInUse", err)
	}
	c, err = socksDialer(t, locked, "bob", "builder").Dial("tcp", echo)
	if err != nil {
		t.Fatalf("after the refused removal: %v", err)
	}
	c.Close()
	// A listener naming a chain the snapshot lacks does not start.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.ServeListener(context.Background(), ln, ListenerSpec{Name: "ghost", Chain: "nope"}); !errors.Is(err, ErrConfig) {
		t.Fatalf("a listener on a missing chain: %v, want ErrConfig", err)
	}
	if err := rt.Update(func(*Draft) error { return nil }); err != nil {
		t.Fatalf("a change after the listener that did not start: %v", err)
	}
}

// The configuration of listeners and chains: what is refused, naming the key.
func TestLoadConfigListeners(t *testing.T) {
	t.Chdir(t.TempDir())
	files, _ := testCert(t, 1)
	good := "users: [{name: a, password: b, role: admin}]\nchains:\n  office:\n    - use: test.auth\nlisteners:\n  - {name: office, address: 127.0.0.1, port: 3128, protocol: mixed, chain: office, tls: {cert: " + files.Cert + ", key: " + files.Key + "}}\n"
	cfg, err := LoadConfig(LoadOptions{File: writeFile(t, good)})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listeners) != 1 || cfg.Listeners[0].Protocol != ProtoMixed || len(cfg.Chains["office"]) != 1 {
		t.Fatalf("listeners = %+v, chains = %+v", cfg.Listeners, cfg.Chains)
	}
	for _, tt := range []struct{ name, yaml, want string }{
		{"bad protocol", "listeners: [{name: x, port: 3128, protocol: ftp}]\n", "listeners[0].protocol"},
		{"default protocol", "listeners: [{name: x, port: 3128}]\n", ""},
		{"ephemeral port", "listeners: [{name: x, address: 127.0.0.1}]\n", ""},
		{"taken name", "listeners: [{name: socks, port: 3128}]\n", "listeners[0].name"},
		{"duplicate name", "listeners: [{name: x, port: 3128}, {name: x, port: 3129}]\n", "listeners[1].name"},
		{"unknown chain", "listeners: [{name: x, port: 3128, chain: nope}]\n", "listeners[0].chain"},
		{"unknown key", "listeners: [{name: x, port: 3128, proto: http}]\n", "proto"},
		{"port collision", "listeners: [{name: x, address: 127.0.0.1, port: 1080}]\n", "listeners[0].port"},
		{"cert without key", "listeners: [{name: x, port: 3128, tls: {cert: " + files.Cert + "}}]\n", "listeners[0].tls"},
		{"missing cert file", "listeners: [{name: x, port: 3128, tls: {cert: nope.pem, key: nope.key}}]\n", "listeners[0].tls"},
		{"pctp tls", "pctp: {tls: {cert: nope.pem, key: nope.key}}\n", "pctp.tls"},
		{"chains not a mapping", "chains: [1]\n", "chains"},
		{"bad chain entry", "chains: {x: [{name: y}]}\n", "chains.x[0]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(LoadOptions{File: writeFile(t, tt.yaml)})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

// httpTarget reads CONNECT's authority and absolute-form URLs only.
func TestHTTPTarget(t *testing.T) {
	for _, tt := range []struct {
		line string
		want middleware.Target
		ok   bool
	}{
		{"CONNECT example.org:443 HTTP/1.1", middleware.Target{Name: "example.org", Port: 443}, true},
		{"CONNECT [::1]:8443 HTTP/1.1", middleware.Target{Addr: netip.MustParseAddr("::1"), Port: 8443}, true},
		{"GET http://127.0.0.1/x HTTP/1.1", middleware.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: 80}, true},
		{"GET http://localhost:8080/x HTTP/1.1", middleware.Target{Name: "localhost", Port: 8080}, true},
		{"CONNECT example.org HTTP/1.1", middleware.Target{}, false},
		{"CONNECT example.org:0 HTTP/1.1", middleware.Target{}, false},
		{"GET /x HTTP/1.1", middleware.Target{}, false},
		{"GET https://example.org/ HTTP/1.1", middleware.Target{}, false},
		{"CONNECT [fe80::1%25lo]:80 HTTP/1.1", middleware.Target{}, false},
	} {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.line + "\r\nHost: h\r\n\r\n")))
		if err != nil {
			if tt.ok {
				t.Errorf("%s: %v", tt.line, err)
			}
			continue
		}
		got, err := httpTarget(req)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v (ok %v)", tt.line, got, err, tt.want, tt.ok)
		}
	}
}

// Bytes a client pipelines after its CONNECT request reach the target.
func TestHTTPConnectEarlyData(t *testing.T) {
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	_, addr := startListener(t, testConfig(stage("test.auth")), ListenerSpec{Name: "web", Protocol: ProtoHTTP})
	c := rawConn(t, addr)
	auth := base64.StdEncoding.EncodeToString([]byte("bob:builder"))
	io.WriteString(c, "CONNECT "+echo+" HTTP/1.1\r\nHost: "+echo+"\r\nProxy-Authorization: Basic "+auth+"\r\n\r\nearly bytes")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %v, %v", resp, err)
	}
	got := make([]byte, len("early bytes"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "early bytes" {
		t.Fatalf("early data echoed as %q, %v", got, err)
	}
}

// A TLS failure is logged once per source group per interval.
func TestTLSFailureLogRateLimit(t *testing.T) {
	var f frontDoors
	now := time.Unix(1_000_000, 0)
	a, b := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	v6a, v6b := netip.MustParseAddr("::1"), netip.MustParseAddr("::2") // one /64
	for _, tt := range []struct {
		addr netip.Addr
		at   time.Duration
		want bool
	}{
		{a, 0, true},
		{a, time.Second, false},
		{b, time.Second, true},
		{v6a, time.Second, true},
		{v6b, 2 * time.Second, false},
		{a, logEvery - time.Second, false},
		{a, logEvery + time.Second, true},
	} {
		if got, _ := f.tlsGate.allow(tt.addr, now.Add(tt.at)); got != tt.want {
			t.Errorf("%v at %v: log %v, want %v", tt.addr, tt.at, got, tt.want)
		}
	}
}
