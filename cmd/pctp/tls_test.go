package main

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"github.com/socks5d/socks5d/internal/testcert"
)

// tlsServer runs a real pctp.Server behind TLS with cert and returns its port.
func tlsServer(t *testing.T, cert testcert.Cert) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	a := &admin{users: map[string]string{"admin": "password", "bob": "bobpass"}, io: "4096"}
	return serveOn(t, a, func(ln net.Listener) net.Listener {
		return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}})
	})
}

// The client speaks TLS with -tls/-cafile, and says clearly when it cannot
// verify the server's certificate or the server does not speak TLS.
func TestClientTLS(t *testing.T) {
	cert := testcert.New(t, 1)
	port := tlsServer(t, cert)
	t.Setenv(passwordEnv, "password")

	for _, host := range []string{"127.0.0.1", "localhost"} {
		code, out, errOut := pctpRun(t, "LIST\n", "-h", host, "-p", port, "-tls", "-cafile", cert.CertFile, "-u", "admin")
		if code != exitOK || !strings.Contains(out, "admin\tAdmin") {
			t.Fatalf("%s over TLS: exit %d, stderr %q, stdout %q", host, code, errOut, out)
		}
	}
	// -cafile alone implies -tls.
	if code, _, errOut := pctpRun(t, "LIST\n", "-h", "127.0.0.1", "-p", port, "-cafile", cert.CertFile, "-u", "admin"); code != exitOK {
		t.Fatalf("-cafile alone: exit %d, stderr %q", code, errOut)
	}
	// A certificate the client cannot verify (the system's CAs, or
	// another CA) is a connection failure that says what to do.
	other := testcert.New(t, 2)
	for _, args := range [][]string{{"-tls"}, {"-tls", "-cafile", other.CertFile}} {
		code, _, errOut := pctpRun(t, "LIST\n", append([]string{"-h", "127.0.0.1", "-p", port, "-u", "admin"}, args...)...)
		if code != exitConnect || !strings.Contains(errOut, "certificate cannot be verified") || !strings.Contains(errOut, "-cafile") {
			t.Errorf("%v: exit %d, stderr %q; want %d and a word about the certificate", args, code, errOut, exitConnect)
		}
	}
	// A plaintext server.
	plain := server(t)
	code, _, errOut := pctpRun(t, "LIST\n", "-h", "127.0.0.1", "-p", plain, "-tls", "-u", "admin")
	if code != exitConnect || errOut == "" {
		t.Errorf("TLS to a plaintext server: exit %d, stderr %q", code, errOut)
	}
	// A CA file that holds no certificate is a usage error.
	code, _, errOut = pctpRun(t, "LIST\n", "-h", "127.0.0.1", "-p", port, "-cafile", cert.KeyFile, "-u", "admin")
	if code != exitUsage || !strings.Contains(errOut, "-cafile") {
		t.Errorf("a key as CA file: exit %d, stderr %q", code, errOut)
	}
}
