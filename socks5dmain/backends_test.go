package socks5dmain

// Authentication backends end to end (issue 17): the real binary asks an
// HTTP hook served by the test; a user the hook accepts is not in the
// user table, and the engine must keep the session (not end it as a
// deleted user), also across a live change of the configuration; the
// hook's ADMINs may log in to PCTP.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socks5d/socks5d/pctp"
)

func TestHookUsersEndToEnd(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]string
		_ = json.NewDecoder(r.Body).Decode(&req)
		switch {
		case req["user"] == "erin" && req["password"] == "erin-pw":
			_, _ = w.Write([]byte(`{"result":"allow","role":"admin"}`))
		case req["user"] == "frank" && req["password"] == "frank-pw":
			_, _ = w.Write([]byte(`{"result":"allow"}`))
		case req["user"] == "erin" || req["user"] == "frank":
			_, _ = w.Write([]byte(`{"result":"deny"}`))
		default:
			_, _ = w.Write([]byte(`{"result":"unknown"}`))
		}
	}))
	defer hook.Close()
	dir := t.TempDir()
	cfg := `chain:
  - use: auth
    backends:
      - type: local
      - type: http
        url: ` + hook.URL + `/auth
  - use: iobuf
`
	if err := os.WriteFile(filepath.Join(dir, "proxy.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := persistStartIn(t, dir, "-c", "proxy.yaml", "-u", "admin:password")
	echo := lcEchoTarget(t)
	if err := lcRoundTrip(t, p.socks, "frank", "frank-pw", echo.addr()); err != nil {
		t.Fatalf("a hook user through the proxy: %v", err)
	}
	if err := lcRoundTrip(t, p.socks, "frank", "wrong", echo.addr()); err == nil {
		t.Fatal("a wrong password accepted")
	}
	if err := lcRoundTrip(t, p.socks, "admin", "password", echo.addr()); err != nil {
		t.Fatalf("a local user: %v", err)
	}

	// An open session of a hook user survives a live change.
	c, err := dialer(t, p.socks, "frank", "frank-pw").Dial("tcp", echo.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	admin := persistAdmin(t, p)
	do(t, admin, "CONFIG IO=8192")
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := c.Read(buf); err != nil || string(buf) != "still here" {
		t.Fatalf("the hook user's session after a live change: %q, %v", buf, err)
	}

	// The hook's ADMIN logs in to PCTP; its BASIC user does not.
	ac, err := pctp.Dial(t.Context(), p.pctp)
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	if err := ac.Login("erin", "erin-pw"); err != nil {
		t.Fatalf("PCTP login of the hook's ADMIN: %v", err)
	}
	bc, err := pctp.Dial(t.Context(), p.pctp)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	if err := bc.Login("frank", "frank-pw"); err == nil {
		t.Fatal("PCTP login of the hook's BASIC user accepted")
	}
	if strings.Contains(p.log.String(), "frank-pw") || strings.Contains(p.log.String(), "erin-pw") {
		t.Errorf("a password reached the log:\n%s", p.log)
	}
}

// A server whose users all come from a hook starts without users of its
// own, and the hook's ADMIN administers it.
func TestHookOnlyServerStarts(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]string
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req["user"] == "erin" && req["password"] == "erin-pw" {
			_, _ = w.Write([]byte(`{"result":"allow","role":"admin"}`))
			return
		}
		_, _ = w.Write([]byte(`{"result":"deny"}`))
	}))
	defer hook.Close()
	dir := t.TempDir()
	cfg := "chain:\n  - use: auth\n    backends:\n      - type: http\n        url: " + hook.URL + "\n"
	if err := os.WriteFile(filepath.Join(dir, "proxy.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := persistStartIn(t, dir, "-c", "proxy.yaml")
	c, err := pctp.Dial(t.Context(), p.pctp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("erin", "erin-pw"); err != nil {
		t.Fatalf("PCTP login of the hook's ADMIN: %v", err)
	}
	do(t, c, "STATS")
}
