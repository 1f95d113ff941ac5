package core

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/socks5d/socks5d/middleware"
)

func init() {
	middleware.Register(middleware.Info{Type: "test.admit", New: newTestAdmit})
}

// testAdmit refuses bob's requests: with a *ReplyError of code 0x05 when
// coded, with a plain error otherwise; it admits everyone else.
type testAdmit struct{ coded bool }

func newTestAdmit(p middleware.Params) (middleware.Middleware, error) {
	var cfg struct {
		Coded bool `json:"coded"`
	}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	return &testAdmit{coded: cfg.Coded}, nil
}

func (a *testAdmit) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		s.Admissions = append(s.Admissions, a)
		return next.ServeConn(ctx, s)
	})
}

func (a *testAdmit) Admit(_ context.Context, s *middleware.Session) error {
	if s.User != "bob" || s.Command == 0 || !s.Target.Addr.IsValid() {
		return nil
	}
	if a.coded {
		return &middleware.ReplyError{Code: middleware.ReplyConnectionRefused, Err: errors.New("test: refused")}
	}
	return errors.New("test: refused")
}

// The engine asks the session's admissions for every command, with the
// user and the request known, and replies a refusal with its ReplyError's
// code, else 0x01, before it dials, listens or opens a UDP relay.
func TestAdmissionsAskedForEveryCommand(t *testing.T) {
	for _, coded := range []bool{false, true} {
		want := middleware.ReplyGeneralFailure
		if coded {
			want = middleware.ReplyConnectionRefused
		}
		_, addr := startProxy(t, testConfig(stage("test.auth"), stage("test.admit", "coded", coded)))
		dest := middleware.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: 9}
		for _, cmd := range []middleware.Command{middleware.CmdConnect, middleware.CmdBind, middleware.CmdUDPAssociate} {
			c := rawConn(t, addr)
			handshake(t, c, "bob", "builder")
			if _, err := c.Write(appendRequest(nil, cmd, dest)); err != nil {
				t.Fatal(err)
			}
			if code, _ := readReply(t, c); code != want {
				t.Errorf("coded %v, %v: reply %v, want %v", coded, cmd, code, want)
			}
			expectClosed(t, c)
		}
		// Others are admitted.
		c := rawConn(t, addr)
		handshake(t, c, "admin", "password")
		if _, err := c.Write(appendRequest(nil, middleware.CmdBind, dest)); err != nil {
			t.Fatal(err)
		}
		if code, _ := readReply(t, c); code != middleware.ReplySucceeded {
			t.Errorf("admin's BIND: reply %v", code)
		}
	}
}
