package forward

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// engineDialer runs the SocketControls a dial's ctx carries, as the
// engine's dialer does.
func engineDialer() *net.Dialer {
	return &net.Dialer{ControlContext: func(ctx context.Context, network, address string, c syscall.RawConn) error {
		for _, f := range middleware.SocketControls(ctx) {
			if err := f(ctx, network, address, c); err != nil {
				return err
			}
		}
		return nil
	}}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// peerOf dials ln through d and returns the address ln saw.
func peerOf(t *testing.T, d *dialer, ln net.Listener) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	p, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	host, _, _ := net.SplitHostPort(p.RemoteAddr().String())
	return host, nil
}

func session(user string) *middleware.Session {
	return &middleware.Session{User: user, Command: middleware.CmdConnect}
}

// The outgoing socket leaves from the rule's address and interface.
func TestBindAndInterface(t *testing.T) {
	ln := listen(t)
	st := build(t, map[string]any{"rules": []any{
		map[string]any{"users": []any{"alice"}, "bind": "127.0.0.2"},
		map[string]any{"users": []any{"bob"}, "bind": "127.0.0.3", "interface": "lo"},
		map[string]any{"users": []any{"carol"}, "bind": "::1"},
	}})
	for user, want := range map[string]string{"alice": "127.0.0.2", "bob": "127.0.0.3", "dave": "127.0.0.1"} {
		s := session(user)
		d := &dialer{st: st, next: engineDialer(), s: s}
		got, err := peerOf(t, d, ln)
		if err != nil && user == "bob" && errors.Is(err, syscall.EPERM) {
			t.Log("SO_BINDTODEVICE needs CAP_NET_RAW here; interface not checked")
			continue
		}
		if err != nil || got != want {
			t.Errorf("%s: the destination saw %s (%v), want %s", user, got, err, want)
		}
	}
	// An IPv6 local address cannot reach an IPv4 destination: refused,
	// naming why.
	d := &dialer{st: st, next: engineDialer(), s: session("carol")}
	if _, err := peerOf(t, d, ln); !errors.Is(err, ErrSocket) {
		t.Errorf("bind ::1 to an IPv4 destination: %v, want ErrSocket", err)
	}
}

// An upstream that accepts and never answers holds the rule's own egress
// for connect_timeout; then the fallback (direct) connects. One that
// refuses is counted and, after failures in a row, skipped.
func TestFallbackAndBackoff(t *testing.T) {
	silent := listen(t) // accepts (the kernel does), never answers
	ln := listen(t)
	refused := listen(t)
	refusedAddr := refused.Addr().String()
	refused.Close()
	mw, err := New(mwtest.Params(Type, map[string]any{
		"connect_timeout": "200ms", "failures": 2, "backoff": "1h",
		"rules": []any{
			map[string]any{"users": []any{"alice"}, "via": []any{"socks5://" + silent.Addr().String()}, "fallback": map[string]any{"direct": true}},
			map[string]any{"users": []any{"bob"}, "via": []any{"socks5://" + refusedAddr}},
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	st := mw.(*stage)
	s := session("alice")
	if got, err := peerOf(t, &dialer{st: st, next: engineDialer(), s: s}, ln); err != nil || got != "127.0.0.1" {
		t.Fatalf("fallback: %s, %v", got, err)
	}
	if s.Egress() != "fallback:direct" {
		t.Errorf("egress %q, want fallback:direct", s.Egress())
	}
	if n, _ := mwtest.Stat(mw, "forward_fallbacks"); n != 1 {
		t.Errorf("fallbacks = %d", n)
	}
	for i, want := range []error{ErrUpstream, ErrUpstream, ErrBackoff} {
		_, err := peerOf(t, &dialer{st: st, next: engineDialer(), s: session("bob")}, ln)
		var re *middleware.ReplyError
		if !errors.Is(err, want) || !errors.As(err, &re) || re.Code != middleware.ReplyGeneralFailure {
			t.Errorf("attempt %d: %v, want %v with reply 0x01", i, err, want)
		}
	}
	key := "forward_upstream_socks5_" + statName(&upstream{scheme: "socks5", host: refusedAddr})[len("socks5_"):]
	for suffix, want := range map[string]int64{"_failures": 2, "_skipped": 1, "_connects": 0} {
		if n, ok := mwtest.Stat(mw, key+suffix); !ok || n != want {
			t.Errorf("%s = %d (%v), want %d", key+suffix, n, ok, want)
		}
	}
}
