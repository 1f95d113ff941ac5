package portguard_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"

	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"

	"example.com/myproxy/portguard"
)

// Every configuration is checked by New; a refusal names the key.
func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     map[string]any
		want    string // the setting as CONFIG lists it; "" when refused
		mention string
	}{
		{"default", nil, "[80, 443]", ""},
		{"a list, sorted", map[string]any{"allow": []any{8443, 22, 443}}, "[22, 443, 8443]", ""},
		{"unknown key", map[string]any{"alow": []any{443}}, "", `"alow"`},
		{"port 0", map[string]any{"allow": []any{443, 0}}, "", `"allow"`},
		{"port too big", map[string]any{"allow": []any{65536}}, "", `"allow"`},
		{"empty", map[string]any{"allow": []any{}}, "", `"allow"`},
		{"ports in text", map[string]any{"allow": "80,443"}, "[80, 443]", ""},
		{"one port alone", map[string]any{"allow": 443}, "[443]", ""},
		{"not a port", map[string]any{"allow": "80,http"}, "", `"allow"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mw, err := mwtest.Build(t, "portguard", mwtest.Params("portguard", tc.cfg))
			if tc.want == "" {
				want := middleware.ErrBadValue
				if tc.name == "unknown key" {
					want = middleware.ErrUnknownKey
				}
				mwtest.ExpectError(t, err, []error{want}, tc.mention)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := mw.(middleware.Tunable).Settings()[0].Value; got != tc.want {
				t.Errorf("allow = %s, want %s", got, tc.want)
			}
		})
	}
}

// target listens on loopback and returns the port; it accepts and closes
// whatever connects.
func target(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// connect serves one CONNECT to 127.0.0.1:port through mw, the way the
// engine does, and returns the reply the client got and the error.
func connect(t *testing.T, mw middleware.Middleware, port uint16) (middleware.Reply, error) {
	t.Helper()
	s, _ := mwtest.Session(t)
	err := mwtest.Serve(context.Background(), mw, &mwtest.Connect{
		Target: middleware.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: port},
		User:   "alice",
		Role:   middleware.RoleBasic,
	}, s)
	if !s.ReplySent {
		t.Fatal("no reply sent")
	}
	return s.Reply, err
}

func stat(t *testing.T, mw middleware.Middleware, key string) int64 {
	t.Helper()
	v, ok := mwtest.Stat(mw, key)
	if !ok {
		t.Fatalf("no STATS key %s", key)
	}
	return v
}

// A port on the list is dialed; another gets 0x02 and is never dialed.
func TestAllowAndRefuse(t *testing.T) {
	open, other := target(t), target(t)
	mw := mwtest.New(t, "portguard", mwtest.Params("portguard", map[string]any{"allow": []any{int(open)}}))

	if reply, err := connect(t, mw, open); reply != middleware.ReplySucceeded || err != nil {
		t.Errorf("allowed port %d: reply %v, err %v", open, reply, err)
	}
	reply, err := connect(t, mw, other)
	if reply != middleware.ReplyNotAllowed || !errors.Is(err, portguard.ErrPortNotAllowed) {
		t.Errorf("port %d off the list: reply %v, err %v; want %v and ErrPortNotAllowed", other, reply, err, middleware.ReplyNotAllowed)
	}
	if a, r := stat(t, mw, "portguard_allowed"), stat(t, mw, "portguard_refused"); a != 1 || r != 1 {
		t.Errorf("STATS allowed %d refused %d, want 1 and 1", a, r)
	}
}

// The list changes live, as CONFIG portguard.allow=[...] changes it: the new
// list applies and the counters carry over; a bad value changes nothing.
func TestLiveChange(t *testing.T) {
	open, other := target(t), target(t)
	p := mwtest.Params("portguard", map[string]any{"allow": []any{int(open)}})
	mw := mwtest.New(t, "portguard", p)
	if reply, _ := connect(t, mw, other); reply != middleware.ReplyNotAllowed {
		t.Fatalf("before the change: reply %v", reply)
	}

	mw, p, err := mwtest.Set("portguard", p, "allow", "["+itoa(open)+", "+itoa(other)+"]")
	if err != nil {
		t.Fatal(err)
	}
	if reply, err := connect(t, mw, other); reply != middleware.ReplySucceeded {
		t.Errorf("after the change: reply %v, err %v", reply, err)
	}
	if a, r := stat(t, mw, "portguard_allowed"), stat(t, mw, "portguard_refused"); a != 1 || r != 1 {
		t.Errorf("STATS allowed %d refused %d after the change, want 1 and 1 (carried over)", a, r)
	}

	for _, bad := range []string{"0", "[0]", "[]", "[80, http]", "80,http"} {
		if _, _, err := mwtest.Set("portguard", p, "allow", bad); !errors.Is(err, middleware.ErrBadValue) {
			t.Errorf("CONFIG portguard.allow=%s: err %v, want ErrBadValue", bad, err)
		}
	}
}

// Every form an operator types for the list reads as the same list.
func TestListForms(t *testing.T) {
	p := mwtest.Params("portguard", nil)
	for _, form := range []string{"[80, 443]", "80,443", "80, 443", "[443, 80]", "['80', 443]"} {
		mw, _, err := mwtest.Set("portguard", p, "allow", form)
		if err != nil {
			t.Errorf("CONFIG portguard.allow=%s: %v", form, err)
			continue
		}
		if got := mw.(middleware.Tunable).Settings()[0].Value; got != "[80, 443]" {
			t.Errorf("CONFIG portguard.allow=%s lists %s", form, got)
		}
	}
}

// What CONFIG lists, pasted back, changes nothing.
func TestSettingPastesBack(t *testing.T) {
	p := mwtest.Params("portguard", map[string]any{"allow": []any{8443, 22, 443}})
	mw := mwtest.New(t, "portguard", p)
	listed := mw.(middleware.Tunable).Settings()[0]
	again, _, err := mwtest.Set("portguard", p, listed.Key, listed.Value)
	if err != nil {
		t.Fatalf("CONFIG portguard.%s=%s: %v", listed.Key, listed.Value, err)
	}
	if got := again.(middleware.Tunable).Settings()[0].Value; got != listed.Value {
		t.Errorf("pasted %s back, now %s", listed.Value, got)
	}
}

func itoa(port uint16) string { return strconv.Itoa(int(port)) }
