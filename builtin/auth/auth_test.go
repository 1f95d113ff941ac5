package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/socks5d/socks5d/builtin/auth"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

func users() mwtest.Users {
	return mwtest.Users{
		"alice": {Password: "wonderland", Role: middleware.RoleBasic},
		"admin": {Password: "s3cret", Role: middleware.RoleAdmin},
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name      string
		cfg       map[string]any
		anonymous bool
		wantErr   error
		errHas    []string
	}{
		{name: "defaults", cfg: nil, anonymous: false},
		{name: "empty", cfg: map[string]any{}, anonymous: false},
		{name: "anonymous true", cfg: map[string]any{"anonymous": true}, anonymous: true},
		{name: "anonymous false", cfg: map[string]any{"anonymous": false}, anonymous: false},
		{name: "unknown key", cfg: map[string]any{"anonymus": true},
			wantErr: middleware.ErrUnknownKey, errHas: []string{`"anonymus"`, "anonymous"}},
		{name: "wrong type", cfg: map[string]any{"anonymous": "yes"},
			wantErr: middleware.ErrBadValue, errHas: []string{`"anonymous"`}},
		{name: "number", cfg: map[string]any{"anonymous": 1},
			wantErr: middleware.ErrBadValue, errHas: []string{`"anonymous"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, ok := middleware.Lookup(auth.Type)
			if !ok {
				t.Fatal("auth is not registered")
			}
			mw, err := info.New(mwtest.Params("auth", tt.cfg))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("New: err = %v, want %v", err, tt.wantErr)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %s", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			aa, ok := mw.(middleware.AnonymousAccess)
			if !ok {
				t.Fatal("stage does not implement AnonymousAccess")
			}
			if got := aa.AllowsAnonymous(); got != tt.anonymous {
				t.Errorf("AllowsAnonymous = %v, want %v", got, tt.anonymous)
			}
		})
	}
}

// installed runs one session through the stage and returns the
// Authenticator it installed.
func installed(t *testing.T, p middleware.Params) middleware.Authenticator {
	t.Helper()
	mw := mwtest.New(t, auth.Type, p)
	s, _ := mwtest.Session(t)
	tm := &mwtest.Terminal{}
	if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if len(tm.Seen()) != 1 || s.Auth == nil {
		t.Fatal("no Authenticator installed before next")
	}
	return s.Auth
}

func TestAccepts(t *testing.T) {
	tests := []struct {
		name         string
		users        mwtest.Users
		anonymous    bool
		noAuth, pass bool
	}{
		{"users, no anonymous", users(), false, false, true},
		{"users and anonymous", users(), true, true, true},
		{"no users, anonymous", mwtest.Users{}, true, true, false},
		{"no users, no anonymous", mwtest.Users{}, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mwtest.Params("auth", map[string]any{"anonymous": tt.anonymous})
			p.Users = tt.users
			a := installed(t, p)
			if got := a.Accepts(middleware.MethodNoAuth); got != tt.noAuth {
				t.Errorf("Accepts(NoAuth) = %v, want %v", got, tt.noAuth)
			}
			if got := a.Accepts(middleware.MethodPassword); got != tt.pass {
				t.Errorf("Accepts(Password) = %v, want %v", got, tt.pass)
			}
			if a.Accepts(middleware.MethodNoAcceptable) || a.Accepts(0x01) {
				t.Error("accepts a method it does not implement")
			}
		})
	}
}

func TestNilUsers(t *testing.T) {
	p := mwtest.Params("auth", nil)
	p.Users = nil
	a := installed(t, p)
	if a.Accepts(middleware.MethodPassword) {
		t.Error("Accepts(Password) with no user table")
	}
	if _, err := a.Authenticate(context.Background(), "alice", "x"); !errors.Is(err, middleware.ErrBadCredentials) {
		t.Errorf("Authenticate = %v, want ErrBadCredentials", err)
	}
}

func TestAuthenticate(t *testing.T) {
	p := mwtest.Params("auth", nil)
	p.Users = users()
	a := installed(t, p)
	tests := []struct {
		user, pass string
		role       middleware.Role
		ok         bool
	}{
		{"alice", "wonderland", middleware.RoleBasic, true},
		{"admin", "s3cret", middleware.RoleAdmin, true},
		{"alice", "s3cret", 0, false},
		{"alice", "", 0, false},
		{"alice", "wonderland ", 0, false},
		{"bob", "wonderland", 0, false},
		{"", "", 0, false},
	}
	for _, tt := range tests {
		role, err := a.Authenticate(context.Background(), tt.user, tt.pass)
		if tt.ok {
			if err != nil || role != tt.role {
				t.Errorf("Authenticate(%q) = %v, %v; want %v, nil", tt.user, role, err, tt.role)
			}
			continue
		}
		if !errors.Is(err, middleware.ErrBadCredentials) {
			t.Errorf("Authenticate(%q) err = %v, want ErrBadCredentials", tt.user, err)
			continue
		}
		if tt.pass != "" && strings.Contains(err.Error(), tt.pass) {
			t.Errorf("error %q reveals the password", err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Authenticate(ctx, "alice", "wonderland"); !errors.Is(err, context.Canceled) {
		t.Errorf("Authenticate with a cancelled ctx = %v, want context.Canceled", err)
	}
}

func failedAuths(t *testing.T, mw middleware.Middleware) int64 {
	t.Helper()
	ss, ok := mw.(middleware.StatsSource)
	if !ok {
		t.Fatal("stage does not implement StatsSource")
	}
	stats := ss.Stats()
	if len(stats) != 1 || stats[0].Key != "failed_auths" {
		t.Fatalf("Stats = %v, want one failed_auths", stats)
	}
	return stats[0].Value
}

// terminal plays the engine's handshake: it authenticates with the
// installed Authenticator and records the outcome on the session.
func terminal(user, pass string) *mwtest.Terminal {
	return &mwtest.Terminal{Facts: func(s *middleware.Session) {
		if _, err := s.Auth.Authenticate(context.Background(), user, pass); err != nil {
			s.AuthState = middleware.AuthFailed
			return
		}
		s.User, s.AuthState = user, middleware.AuthOK
	}}
}

func TestFailedAuthsSurviveRebuild(t *testing.T) {
	p := mwtest.Params("auth", nil)
	p.Users = users()
	mw := mwtest.New(t, auth.Type, p)
	if got := failedAuths(t, mw); got != 0 {
		t.Fatalf("failed_auths = %d at start", got)
	}

	for _, tc := range []struct{ user, pass string }{
		{"alice", "wonderland"}, {"alice", "nope"}, {"bob", "x"}, {"admin", "s3cret"},
	} {
		s, _ := mwtest.Session(t)
		if err := mwtest.Serve(context.Background(), mw, terminal(tc.user, tc.pass), s); err != nil {
			t.Fatal(err)
		}
	}
	if got := failedAuths(t, mw); got != 2 {
		t.Errorf("failed_auths = %d, want 2", got)
	}

	// A rebuild (same name, same pool) keeps counting from where it was.
	p.Config = map[string]any{"anonymous": true}
	mw2 := mwtest.New(t, auth.Type, p)
	s, _ := mwtest.Session(t)
	if err := mwtest.Serve(context.Background(), mw2, terminal("alice", "bad"), s); err != nil {
		t.Fatal(err)
	}
	if got := failedAuths(t, mw2); got != 3 {
		t.Errorf("after rebuild failed_auths = %d, want 3", got)
	}
	if got := failedAuths(t, mw); got != 3 {
		t.Errorf("old stage sees failed_auths = %d, want 3 (shared)", got)
	}
}

func TestConcurrentFailures(t *testing.T) {
	p := mwtest.Params("auth", nil)
	p.Users = users()
	mw := mwtest.New(t, auth.Type, p)
	h := mw.Wrap(terminal("alice", "wrong"))
	const n = 50
	sessions := make([]*middleware.Session, n)
	for i := range sessions {
		sessions[i], _ = mwtest.Session(t)
	}
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() {
			if err := h.ServeConn(context.Background(), s); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := failedAuths(t, mw); got != n {
		t.Errorf("failed_auths = %d, want %d", got, n)
	}
}

func TestNextErrorPassedThrough(t *testing.T) {
	mw := mwtest.New(t, auth.Type, mwtest.Params("auth", nil))
	want := errors.New("boom")
	s, _ := mwtest.Session(t)
	tm := &mwtest.Terminal{Err: want, Facts: func(s *middleware.Session) { s.AuthState = middleware.AuthFailed }}
	if err := mwtest.Serve(context.Background(), mw, tm, s); !errors.Is(err, want) {
		t.Errorf("Serve = %v, want %v", err, want)
	}
	if got := failedAuths(t, mw); got != 1 {
		t.Errorf("failed_auths = %d, want 1 (counted on failure paths too)", got)
	}
}
