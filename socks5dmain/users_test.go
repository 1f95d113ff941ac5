package socks5dmain

import (
	"slices"
	"strings"
	"testing"
)

// Over the real admin port: a name the state file cannot keep exactly is
// refused with a reason; a UTF-8 name and a 200-octet password are added,
// used through the proxy (every octet counting) and kept across a restart.
func TestPCTPAddNamesAndLongPasswords(t *testing.T) {
	prefix := strings.Repeat("x", 72)
	long := prefix + strings.Repeat("y", 128)
	dir := t.TempDir()
	echo := lcEchoTarget(t)

	p := persistStartIn(t, dir, "-u", "admin:password")
	admin := persistAdmin(t, p)
	for _, name := range []string{"caf\xe9", "a\u0085b"} {
		do(t, admin, "ADD BASIC")
		r, err := admin.Do("USER " + name)
		if err != nil {
			t.Fatal(err)
		}
		if want := "-ERR User name must be valid UTF-8 without control characters; user addition abandoned"; r.Status != want {
			t.Errorf("USER %q: %q, want %q", name, r.Status, want)
		}
	}
	persistAddUser(t, admin, "BASIC", "café", long)
	if err := lcRoundTrip(t, p.socks, "café", prefix+"z", echo.addr()); err == nil {
		t.Error("a password sharing the first 72 octets was accepted")
	}
	if err := lcRoundTrip(t, p.socks, "café", long, echo.addr()); err != nil {
		t.Errorf("café with the 200-octet password: %v", err)
	}
	if strings.Contains(p.log.String(), long) {
		t.Error("the password appears in the log")
	}
	persistStop(t, p)

	p = persistStartIn(t, dir, "-u", "admin:password")
	admin = persistAdmin(t, p)
	if list := do(t, admin, "LIST").Lines; !slices.Contains(list, "café\tBasic") {
		t.Errorf("LIST after the restart: %q, want café\\tBasic", list)
	}
	if err := lcRoundTrip(t, p.socks, "café", long, echo.addr()); err != nil {
		t.Errorf("café after the restart: %v", err)
	}
	persistStop(t, p)
}
