package builtin_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	_ "github.com/socks5d/socks5d/builtin"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// TestRegistered checks every registered stage type: each has a
// description and builds from an empty configuration. The registry is
// the list, so a new stage is checked without editing this test; and
// every stage package under builtin/ must be in it (blank-imported by
// builtin.go, registered under its directory's name).
func TestRegistered(t *testing.T) {
	types := middleware.Types()
	if len(types) == 0 {
		t.Fatal("importing builtin registers no stage")
	}
	for _, typ := range types {
		info, _ := middleware.Lookup(typ)
		if info.Doc == "" {
			t.Errorf("%s has no Doc", typ)
		}
		if _, err := info.New(mwtest.Params(typ, nil)); err != nil {
			t.Errorf("%s with defaults: %v", typ, err)
		}
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if gofiles, _ := filepath.Glob(filepath.Join(e.Name(), "*.go")); len(gofiles) == 0 {
			continue
		}
		if !slices.Contains(types, e.Name()) {
			t.Errorf("builtin/%s registers no stage %q: is it blank-imported by builtin.go?", e.Name(), e.Name())
		}
	}
}

// BenchmarkDefaultChain is the per-connection cost of the default chain's
// stages (limits, auth, accounting, metrics, connlog, iobuf) around a
// terminal handler that only records the facts of an authenticated,
// successful CONNECT: what the chain adds to every connection. Its
// sub-benchmarks are each stage alone around the same handler, so each
// stage's share is measured one by one ("none" is the handler alone).
func BenchmarkDefaultChain(b *testing.B) {
	chain := []string{"limits", "auth", "accounting", "metrics", "connlog", "iobuf"}
	b.Run("all", func(b *testing.B) { benchChain(b, chain) })
	b.Run("none", func(b *testing.B) { benchChain(b, nil) })
	for _, st := range chain {
		b.Run(st, func(b *testing.B) { benchChain(b, []string{st}) })
	}
}

// benchChain serves connections through the stages named, in order.
func benchChain(b *testing.B, chain []string) {
	shared := middleware.NewShared()
	users := mwtest.Users{"alice": {Password: "pw", Role: middleware.RoleBasic}}
	var h middleware.Handler = middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		if s.Auth != nil {
			if _, err := s.Auth.Authenticate(ctx, "alice", "pw"); err != nil {
				return err
			}
		}
		s.User, s.Role, s.AuthState = "alice", middleware.RoleBasic, middleware.AuthOK
		s.Command, s.Target = middleware.CmdConnect, middleware.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: 9}
		for _, a := range s.Admissions {
			if err := a.Admit(ctx, s); err != nil {
				return err
			}
		}
		if _, err := s.Dialer.DialContext(ctx, "tcp", "127.0.0.1:9"); err != nil {
			return err
		}
		s.Reply, s.ReplySent = middleware.ReplySucceeded, true
		s.Up.Add(8)
		s.Down.Add(8)
		s.End = time.Now()
		return nil
	})
	for i := len(chain) - 1; i >= 0; i-- {
		info, _ := middleware.Lookup(chain[i])
		p := mwtest.Params(chain[i], map[string]any{})
		p.Shared, p.Users = shared, users
		if chain[i] == "connlog" {
			p.Config["file"] = "" // the file writer has its own benchmark
		}
		mw, err := info.New(p)
		if err != nil {
			b.Fatal(err)
		}
		h = mw.Wrap(h)
	}
	client := netip.MustParseAddrPort("127.0.0.1:40000")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s := &middleware.Session{ID: 1, Start: time.Now(), Client: client, Logger: hclog.NewNullLogger(), Dialer: nopDialer{}}
		if err := h.ServeConn(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}

// nopDialer "dials" without a socket.
type nopDialer struct{}

func (nopDialer) DialContext(context.Context, string, string) (net.Conn, error) { return nil, nil }

// TestSettingsPasteBack: every setting every registered stage lists, with
// its defaults, is taken back by mwtest.Set (CONFIG's reader and the
// stage's New) and lists the same. cmd/socks5d's TestConfigLinesPasteBack
// does the same through PCTP with other values.
func TestSettingsPasteBack(t *testing.T) {
	for _, typ := range middleware.Types() {
		p := mwtest.Params(typ, nil)
		mw := mwtest.New(t, typ, p)
		tun, ok := mw.(middleware.Tunable)
		if !ok {
			continue
		}
		before := tun.Settings()
		for _, s := range before {
			again, _, err := mwtest.Set(typ, p, s.Key, s.Value)
			if err != nil {
				t.Errorf("%s.%s=%s: %v", typ, s.Key, s.Value, err)
				continue
			}
			// CONFIG lists key: value (limits' help says whether its
			// max_connections is the automatic one: that may change).
			sameLines := func(a, b middleware.Setting) bool { return a.Key == b.Key && a.Value == b.Value }
			if after := again.(middleware.Tunable).Settings(); !slices.EqualFunc(after, before, sameLines) {
				t.Errorf("%s.%s=%s changed the settings:\nbefore %v\nafter  %v", typ, s.Key, s.Value, before, after)
			}
		}
	}
}
