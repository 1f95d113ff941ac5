package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/socks5d/socks5d/internal/testnet"
)

// fakeHTTPProxy answers one CONNECT with resp, written in one piece, and
// reports the request it read.
func fakeHTTPProxy(t *testing.T, resp string) (string, <-chan *http.Request) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan *http.Request, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			got <- nil
			return
		}
		got <- req
		io.WriteString(c, resp)
		time.Sleep(100 * time.Millisecond) // let the client read before the close
	}()
	return ln.Addr().String(), got
}

// The tunnel's first bytes, sent with the 200, stay for the caller.
func TestHTTPConnectLeavesTunnelBytes(t *testing.T) {
	addr, reqs := fakeHTTPProxy(t, "HTTP/1.1 200 Connection established\r\n\r\ntunnel bytes")
	c := testnet.Dial(t, addr)
	if err := httpConnect(c, "u", "p", netip.MustParseAddrPort("127.0.0.1:4660")); err != nil {
		t.Fatal(err)
	}
	req := <-reqs
	if req.Method != http.MethodConnect || req.Host != "127.0.0.1:4660" || req.Header.Get("Proxy-Authorization") != "Basic dTpw" {
		t.Errorf("request %s %s %v", req.Method, req.Host, req.Header)
	}
	b := make([]byte, len("tunnel bytes"))
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "tunnel bytes" {
		t.Fatalf("after the header: %q, %v", b, err)
	}
}

func TestHTTPConnectRefused(t *testing.T) {
	addr, _ := fakeHTTPProxy(t, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
	if err := httpConnect(testnet.Dial(t, addr), "", "", netip.MustParseAddrPort("127.0.0.1:4660")); !errors.Is(err, errHTTP) {
		t.Fatalf("err = %v, want errHTTP", err)
	}
}
