package socks5dmain

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socks5d/socks5d/internal/testcert"
)

// lookCurl finds curl: a test that needs it skips locally without it and
// fails under CI, which installs it.
func lookCurl(t *testing.T) string {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is missing; .ci/run installs it")
		}
		t.Skip("curl not installed")
	}
	return curl
}

// listenerAddr finds where the named listener listens, from the log.
func listenerAddr(t *testing.T, s *server, name string) string {
	t.Helper()
	return waitMatch(t, s.log.String, `listener listening: listener=`+name+` .*address=(\S+)`)
}

// waitMatch waits until log() matches expr (the listeners and PCTP are
// logged after the SOCKS line the start helpers wait for) and returns
// the first group.
func waitMatch(t *testing.T, log func() string, expr string) string {
	t.Helper()
	re := regexp.MustCompile(expr)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m := re.FindStringSubmatch(log()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("the log never matched %s:\n%s", expr, log())
	return ""
}

// frontDoorConfig has alice, a mixed listener on the main chain, an HTTPS
// proxy listener with cert, and a listener whose chain denies loopback.
func frontDoorConfig(t *testing.T, cert testcert.Cert) string {
	return writeConfig(t, fmt.Sprintf(`
users:
  - {name: alice, password: wonderland, role: basic}
chains:
  locked:
    - use: auth
    - use: filter
      rules:
        - {action: deny, dest: ["127.0.0.0/8", "localhost"]}
listeners:
  - {name: office, address: 127.0.0.1, port: 0, protocol: mixed}
  - {name: secure, address: 127.0.0.1, port: 0, protocol: mixed, tls: {cert: %s, key: %s}}
  - {name: locked, address: 127.0.0.1, port: 0, protocol: mixed, chain: locked}
`, cert.CertFile, cert.KeyFile))
}

// curl speaks HTTP proxy (plain and over TLS) and SOCKS5 to the same
// listeners; a second listener's chain denies what the first allows.
func TestFrontDoorsWithCurl(t *testing.T) {
	curl := lookCurl(t)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer web.Close()
	_, port, _ := net.SplitHostPort(web.Listener.Addr().String())
	cert := testcert.New(t, 1)
	s := startServer(t, append([]string{"-c", frontDoorConfig(t, cert), "-u", "admin:password"}, loopbackArgs...)...)
	office, secure, locked := listenerAddr(t, s, "office"), listenerAddr(t, s, "secure"), listenerAddr(t, s, "locked")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	get := func(args ...string) (string, error) {
		args = append([]string{"-sS", "--max-time", "10"}, args...)
		out, err := exec.CommandContext(ctx, curl, args...).CombinedOutput()
		return string(out), err
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"http proxy, mixed port", []string{"-x", "http://alice:wonderland@" + office, "http://localhost:" + port + "/plain"}, "hello /plain"},
		{"http CONNECT, mixed port", []string{"-p", "-x", "http://alice:wonderland@" + office, "http://localhost:" + port + "/tunnel"}, "hello /tunnel"},
		{"socks5, mixed port", []string{"--socks5-hostname", office, "--proxy-user", "alice:wonderland", "http://localhost:" + port + "/socks"}, "hello /socks"},
		{"https proxy", []string{"--proxy", "https://" + secure, "--proxy-cacert", cert.CertFile, "--proxy-user", "alice:wonderland", "http://localhost:" + port + "/tls"}, "hello /tls"},
		{"https proxy, CONNECT", []string{"-p", "--proxy", "https://localhost:" + portOf(secure), "--proxy-cacert", cert.CertFile, "--proxy-user", "alice:wonderland", "http://localhost:" + port + "/tls-tunnel"}, "hello /tls-tunnel"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := get(tt.args...)
			if err != nil || out != tt.want {
				t.Fatalf("curl %v: %v\n%s", tt.args, err, out)
			}
		})
	}
	// 407 without credentials, 403 from the locked listener's chain.
	out, err := get("-o", "/dev/null", "-w", "%{http_code}", "-x", "http://"+office, "http://localhost:"+port+"/")
	if out != "407" {
		t.Errorf("no credentials: %q, %v; want 407", out, err)
	}
	out, err = get("-o", "/dev/null", "-w", "%{http_code}", "-x", "http://alice:wonderland@"+locked, "http://localhost:"+port+"/")
	if out != "403" {
		t.Errorf("locked listener over HTTP: %q, %v; want 403", out, err)
	}
	if out, err := get("--socks5-hostname", locked, "--proxy-user", "alice:wonderland", "http://localhost:"+port+"/"); err == nil {
		t.Errorf("locked listener over SOCKS succeeded: %s", out)
	}
	// A plaintext client on the TLS port is refused.
	if out, err := get("-x", "http://alice:wonderland@"+secure, "http://localhost:"+port+"/"); err == nil {
		t.Errorf("plaintext on the TLS listener succeeded: %s", out)
	}
	if strings.Contains(s.log.String(), "wonderland") {
		t.Fatal("a password appears in the log")
	}
	// STATS names the listeners, and counts the locked chain's own filter.
	st := stats(t, login(t, s.pctpAddr(t)))
	for key, least := range map[string]int64{
		"listener.office.connections":            4,
		"listener.office.http":                   3,
		"listener.office.http_auth_required":     1,
		"listener.secure.connections":            3,
		"listener.secure.tls_handshake_failures": 1,
		"listener.locked.connections":            2,
		"listener.socks.connections":             0,
		"filter_denied":                          2,
	} {
		if n, ok := st[key]; !ok || n < least {
			t.Errorf("STATS %s = %d (present %v), want at least %d", key, n, ok, least)
		}
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// Go's net/http client with Proxy set uses the mixed port like curl.
func TestFrontDoorGoClient(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer web.Close()
	cert := testcert.New(t, 1)
	s := startServer(t, append([]string{"-c", frontDoorConfig(t, cert)}, loopbackArgs...)...)
	pu, _ := url.Parse("http://alice:wonderland@" + listenerAddr(t, s, "office"))
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 10 * time.Second}
	resp, err := c.Get(web.URL + "/go")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// pctp.tls makes the admin port speak TLS with the configured certificate.
func TestPCTPOverTLS(t *testing.T) {
	cert := testcert.New(t, 1)
	cfg := writeConfig(t, fmt.Sprintf("pctp: {tls: {cert: %s, key: %s}}\n", cert.CertFile, cert.KeyFile))
	s := startServer(t, append([]string{"-c", cfg, "-u", "admin:s3cret"}, loopbackArgs...)...)
	addr := waitMatch(t, s.log.String, `PCTP admin listening: address=(\S+) tls=true`)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: cert.Pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "USER admin\r\nPASS s3cret\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for _, want := range []string{"+OK", "+OK Successfully"} {
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, want) {
			t.Fatalf("reply %q, %v; want %s", line, err, want)
		}
	}
}

// SIGHUP reads the certificates again: new handshakes on a TLS listener
// and on PCTP get the renewed one; a file that fails to load keeps the
// certificate in force.
func TestSIGHUPReloadsCertificates(t *testing.T) {
	first, second := testcert.New(t, 1), testcert.New(t, 2)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	install := func(c testcert.Cert) {
		t.Helper()
		for src, dst := range map[string]string{c.CertFile: certFile, c.KeyFile: keyFile} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(first)
	cfg := writeConfig(t, fmt.Sprintf("users: [{name: alice, password: wonderland, role: basic}]\npctp: {tls: {cert: %s, key: %s}}\nlisteners:\n  - {name: secure, address: 127.0.0.1, port: 0, protocol: mixed, tls: {cert: %s, key: %s}}\n",
		certFile, keyFile, certFile, keyFile))
	p := startLCProc(t, 0, "-c", cfg)
	secure := waitMatch(t, p.log.String, `listener listening: listener=secure .*address=(\S+)`)
	serial := func(addr string, pool *x509.CertPool) int64 {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatalf("TLS to %s: %v", addr, err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	for _, addr := range []string{secure, p.pctp} {
		if n := serial(addr, first.Pool); n != 1 {
			t.Fatalf("%s: serial %d, want 1", addr, n)
		}
	}
	install(second)
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, "configuration reloaded", 1, 5*time.Second)
	for _, addr := range []string{secure, p.pctp} {
		if n := serial(addr, second.Pool); n != 2 {
			t.Fatalf("%s after SIGHUP: serial %d, want 2", addr, n)
		}
	}
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, "TLS certificate reload failed", 2, 5*time.Second)
	if n := serial(secure, second.Pool); n != 2 {
		t.Fatalf("after a failed reload: serial %d, want 2", n)
	}
}
