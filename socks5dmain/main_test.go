package socks5dmain

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/socks5d/socks5d/internal/testlog"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = testlog.Buffer

// listenRE finds the SOCKS address in the log, text or JSON format.
var listenRE = regexp.MustCompile(`SOCKS5 proxy listening(?:: address=|",.*"address":")([^"\s]+)`)

// server is socks5d started in-process through RunContext.
type server struct {
	socks string
	log   *syncBuffer
}

// startServer runs socks5d with args from a directory without
// configs/proxy.yaml and waits until its log says where it listens.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	t.Chdir(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- RunContext(ctx, args, io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenRE.FindStringSubmatch(logs.String()); m != nil {
			return &server{socks: m[1], log: logs}
		}
		select {
		case err := <-done:
			t.Fatalf("server exited: %v\n%s", err, logs)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("server never said where it listens:\n%s", logs)
	return nil
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// shippedConfig returns a copy of configs/proxy.yaml in a temporary
// directory: the server keeps its data beside its config file, and a test
// must not write into the source tree.
func shippedConfig(t *testing.T) string {
	t.Helper()
	body, err := os.ReadFile("../configs/proxy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return writeConfig(t, string(body))
}

var loopbackArgs = []string{"-l", "127.0.0.1", "-p", "0", "-P", "0"}

func dialer(t *testing.T, proxyAddr, user, pass string) proxy.Dialer {
	t.Helper()
	d, err := proxy.SOCKS5("tcp", proxyAddr, &proxy.Auth{User: user, Password: pass}, &net.Dialer{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestShippedConfigServesCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is missing; .ci/run installs it")
		}
		t.Skip("curl not installed")
	}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer web.Close()
	_, port, _ := net.SplitHostPort(web.Listener.Addr().String())

	s := startServer(t, append([]string{"-c", shippedConfig(t), "-u", "admin:s3cret"}, loopbackArgs...)...)
	if !strings.Contains(s.log.String(), "chain=\"limits → auth → accounting → metrics → connlog → iobuf\"") {
		t.Errorf("log does not show the shipped chain:\n%s", s.log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, curl, "-sS", "--max-time", "10",
		"--socks5-hostname", s.socks, "--proxy-user", "admin:s3cret",
		"http://localhost:"+port+"/curl").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if string(out) != "hello /curl" {
		t.Fatalf("curl got %q", out)
	}
	// A wrong password fails.
	out, err = exec.CommandContext(ctx, curl, "-sS", "--max-time", "10",
		"--socks5-hostname", s.socks, "--proxy-user", "admin:wrong",
		"http://localhost:"+port+"/").CombinedOutput()
	if err == nil {
		t.Fatalf("curl with a wrong password succeeded: %s", out)
	}
	if strings.Contains(s.log.String(), "s3cret") {
		t.Fatal("a password appears in the log")
	}
}

// transfer moves size random bytes each way through the proxy and checks
// both directions with SHA-256.
func transfer(t *testing.T, d proxy.Dialer, size int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	up, down := make([]byte, size), make([]byte, size)
	_, _ = rand.Read(up)
	_, _ = rand.Read(down)
	got := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		wrote := make(chan struct{})
		go func() { _, _ = c.Write(down); _ = c.(*net.TCPConn).CloseWrite(); close(wrote) }()
		h := sha256.New()
		_, _ = io.Copy(h, c)
		<-wrote // closing c before the write ends would cut the download
		got <- [32]byte(h.Sum(nil))
	}()
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	go func() { _, _ = c.Write(up); _ = c.(interface{ CloseWrite() error }).CloseWrite() }()
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil {
		t.Fatal(err)
	}
	if [32]byte(h.Sum(nil)) != sha256.Sum256(down) {
		t.Fatal("download checksum mismatch")
	}
	select {
	case sum := <-got:
		if sum != sha256.Sum256(up) {
			t.Fatal("upload checksum mismatch")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("target never finished")
	}
}

func TestDefaultChainTransfers(t *testing.T) {
	s := startServer(t, append([]string{"-u", "admin:password"}, loopbackArgs...)...)
	transfer(t, dialer(t, s.socks, "admin", "password"), 16<<20)
	if _, err := dialer(t, s.socks, "admin", "nope").Dial("tcp", "127.0.0.1:9"); err == nil {
		t.Fatal("wrong password accepted")
	}
}

func TestRateLimitedChainTransfers(t *testing.T) {
	cfg := writeConfig(t, `
users:
  - {name: bob, password: builder, role: basic}
chain:
  - use: auth
  - use: ratelimit
    per_connection: 64MiB
    per_user: 128MiB
  - use: accounting
  - use: iobuf
    size: 8KiB
`)
	s := startServer(t, append([]string{"-c", cfg, "-u", "admin:password"}, loopbackArgs...)...)
	transfer(t, dialer(t, s.socks, "bob", "builder"), 4<<20)
}

func TestConcurrentClientsDefaultChain(t *testing.T) {
	s := startServer(t, append([]string{"-u", "admin:password"}, loopbackArgs...)...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	const clients = 200
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := dialer(t, s.socks, "admin", "password").Dial("tcp", ln.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			msg := fmt.Appendf(nil, "client %d", i)
			_, _ = c.Write(msg)
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, msg) {
				errs <- fmt.Errorf("client %d: %q %v", i, buf, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestExitStatus(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, busyPort, _ := net.SplitHostPort(busy.Addr().String())
	tests := []struct {
		name   string
		args   []string
		config string
		env    map[string]string
		code   int
		want   string // in stderr (or stdout for -v)
	}{
		{name: "help", args: []string{"-h"}, code: 0, want: "Usage: socks5d"},
		{name: "version", args: []string{"-v"}, code: 0, want: "socks5d "},
		{name: "unknown flag", args: []string{"-x"}, code: 2, want: "-x"},
		{name: "stray argument", args: []string{"-u", "a:b", "extra"}, code: 2, want: "extra"},
		{name: "port out of range", args: []string{"-u", "a:b", "-p", "70000"}, code: 2, want: "flag -p"},
		{name: "bad level", args: []string{"-u", "a:b", "-d", "LOUD"}, code: 2, want: "flag -d"},
		{name: "bad -u", args: []string{"-u", "nopass"}, code: 2, want: "-u"},
		{name: "missing file", args: []string{"-c", "/nonexistent.yaml"}, code: 2, want: "/nonexistent.yaml"},
		{name: "unknown key", config: "socks:\n  prot: 1\n", args: []string{"-u", "a:b"}, code: 2, want: "prot"},
		{name: "unknown stage", config: "chain:\n  - use: auht\n", args: []string{"-u", "a:b"}, code: 2, want: `unknown stage type "auht" (known types: accounting, auth, connlog, `},
		{name: "unknown stage key", config: "chain:\n  - use: auth\n    anonymus: true\n", args: []string{"-u", "a:b"}, code: 2, want: `unknown key "anonymus" (known: anonymous, backends, ban,`},
		{name: "nobody can connect", code: 2, want: "-u admin:PASSWORD"},
		{name: "bad env", env: map[string]string{"SOCKS5D_SOCKS__PORT": "x"}, args: []string{"-u", "a:b"}, code: 2, want: "socks.port"},
		{name: "listen address typo", args: []string{"-u", "a:b", "-l", "256.0.0.1", "-p", "0"}, code: 2, want: "flag -l"},
		{name: "listen fails", args: []string{"-u", "a:b", "-l", "127.0.0.1", "-p", busyPort}, code: 1, want: "SOCKS listener"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := tt.args
			if tt.config != "" {
				args = append([]string{"-c", writeConfig(t, tt.config)}, args...)
			}
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code := ExitCode(RunContext(ctx, args, &stdout, &stderr), &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, tt.want) {
				t.Fatalf("output does not contain %q:\n%s", tt.want, out)
			}
		})
	}
}
