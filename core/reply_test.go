package core

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// TestStageRefusalPassesThrough: a stage's refusal reaches the chain as
// the stage wrote it, so the reply text appears once in the error the
// connection ends with, and the stage's sentinel is still found.
func TestStageRefusalPassesThrough(t *testing.T) {
	rt, addr := startProxy(t, testConfig(append(defaultTestChain(), stage("test.dial", "fail", "blocked"))...))
	c := rawConn(t, addr)
	handshake(t, c, "bob", "builder")
	if _, err := c.Write(appendRequest(nil, middleware.CmdConnect, middleware.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: 1})); err != nil {
		t.Fatal(err)
	}
	if code, _ := readReply(t, c); code != middleware.ReplyNotAllowed {
		t.Fatalf("reply = %v, want %v", code, middleware.ReplyNotAllowed)
	}
	expectClosed(t, c)
	log := dialOutcomes(rt, "test.dial")
	var errs []error
	for end := time.Now().Add(5 * time.Second); len(errs) == 0 && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond) // the stage records after the terminal returns
		errs = log.all()
	}
	if len(errs) != 1 {
		t.Fatalf("stage saw %d outcomes, want 1", len(errs))
	}
	err := errs[0]
	if !errors.Is(err, errTestBlocked) {
		t.Errorf("err = %v, want it to wrap the stage's sentinel", err)
	}
	if n := strings.Count(err.Error(), middleware.ReplyNotAllowed.String()); n != 1 {
		t.Errorf("err = %q names the reply %d times, want once", err, n)
	}
}
