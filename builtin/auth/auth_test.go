package auth_test

import (
	"context"
	"errors"
	"maps"
	"slices"
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
	defaults := map[string]string{
		"max_failures": "5", "failure_window": "1m0s", "ban": "1m0s", "max_ban": "1h0m0s", "ban_memory": "24h0m0s",
	}
	with := func(kv ...string) map[string]string {
		m := maps.Clone(defaults)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name      string
		cfg       map[string]any
		anonymous bool
		settings  map[string]string // nil: the defaults
		wantErr   error
		errHas    []string
	}{
		{name: "defaults", cfg: nil, anonymous: false},
		{name: "empty", cfg: map[string]any{}, anonymous: false},
		{name: "anonymous true", cfg: map[string]any{"anonymous": true}, anonymous: true},
		{name: "anonymous false", cfg: map[string]any{"anonymous": false}, anonymous: false},
		{name: "unknown key", cfg: map[string]any{"anonymus": true},
			wantErr: middleware.ErrUnknownKey, errHas: []string{`"anonymus"`, "anonymous", "max_failures", "ban_memory"}},
		{name: "wrong type", cfg: map[string]any{"anonymous": "yes"},
			wantErr: middleware.ErrBadValue, errHas: []string{`"anonymous"`}},
		{name: "number", cfg: map[string]any{"anonymous": 1},
			wantErr: middleware.ErrBadValue, errHas: []string{`"anonymous"`}},

		{name: "guard settings", cfg: map[string]any{
			"max_failures": 10, "failure_window": "10m", "ban": "5m", "max_ban": "6h", "ban_memory": "48h"},
			settings: map[string]string{"max_failures": "10", "failure_window": "10m0s", "ban": "5m0s", "max_ban": "6h0m0s", "ban_memory": "48h0m0s"}},
		{name: "duration without a unit", cfg: map[string]any{"failure_window": 30},
			wantErr: middleware.ErrBadValue, errHas: []string{`"failure_window"`, "write 30s"}},
		{name: "ban_memory overflowing", cfg: map[string]any{"ban_memory": 1e300},
			wantErr: middleware.ErrBadValue, errHas: []string{`"ban_memory"`}},
		{name: "guard off", cfg: map[string]any{"max_failures": 0}, settings: with("max_failures", "0")},
		{name: "README stricter example", cfg: map[string]any{
			"max_failures": 3, "failure_window": "10m", "ban": "15m", "max_ban": "24h", "ban_memory": "168h"},
			settings: map[string]string{"max_failures": "3", "failure_window": "10m0s", "ban": "15m0s", "max_ban": "24h0m0s", "ban_memory": "168h0m0s"}},
		{name: "ban equals max_ban", cfg: map[string]any{"ban": "1h"}, settings: with("ban", "1h0m0s")},
		{name: "no ban memory", cfg: map[string]any{"ban_memory": "0s"}, settings: with("ban_memory", "0s")},
		{name: "max_failures at limit", cfg: map[string]any{"max_failures": auth.MaxFailuresLimit},
			settings: with("max_failures", "1000000")},

		{name: "negative max_failures", cfg: map[string]any{"max_failures": -1},
			wantErr: middleware.ErrBadValue, errHas: []string{`"max_failures"`, "-1"}},
		{name: "max_failures too large", cfg: map[string]any{"max_failures": auth.MaxFailuresLimit + 1},
			wantErr: middleware.ErrBadValue, errHas: []string{`"max_failures"`}},
		{name: "fractional max_failures", cfg: map[string]any{"max_failures": 2.5},
			wantErr: middleware.ErrBadValue, errHas: []string{`"max_failures"`}},
		{name: "max_failures string", cfg: map[string]any{"max_failures": "five"},
			wantErr: middleware.ErrBadValue, errHas: []string{`"max_failures"`}},
		{name: "zero window", cfg: map[string]any{"failure_window": "0s"},
			wantErr: middleware.ErrBadValue, errHas: []string{`"failure_window"`}},
		{name: "sub-second window", cfg: map[string]any{"failure_window": "500ms"},
			wantErr: middleware.ErrBadValue, errHas: []string{`"failure_window"`}},
		{name: "bad duration", cfg: map[string]any{"ban": "forever"},
			wantErr: middleware.ErrBadValue, errHas: []string{`"ban"`}},
		{name: "negative duration", cfg: map[string]any{"ban": "-1m"},
			wantErr: middleware.ErrBadValue, errHas: []string{`"ban"`}},
		{name: "zero ban", cfg: map[string]any{"ban": 0},
			wantErr: middleware.ErrBadValue, errHas: []string{`"ban"`}},
		{name: "max_ban below ban", cfg: map[string]any{"ban": "2h"},
			wantErr: middleware.ErrBadValue, errHas: []string{`"max_ban"`, "2h0m0s"}},
		{name: "ban too long", cfg: map[string]any{"ban": "9000h", "max_ban": "9000h"},
			wantErr: middleware.ErrBadValue, errHas: []string{`"ban"`}},
		{name: "ban_memory too long", cfg: map[string]any{"ban_memory": "10000h"},
			wantErr: middleware.ErrBadValue, errHas: []string{`"ban_memory"`}},
		{name: "invalid even with the guard off", cfg: map[string]any{"max_failures": 0, "ban": "1h", "max_ban": "1m"},
			wantErr: middleware.ErrBadValue, errHas: []string{`"max_ban"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := mwtest.Build(t, auth.Type, mwtest.Params("auth", tt.cfg))
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
			tun, ok := mw.(middleware.Tunable)
			if !ok {
				t.Fatal("stage does not implement Tunable")
			}
			want := tt.settings
			if want == nil {
				want = defaults
			}
			got := map[string]string{}
			for _, s := range tun.Settings() {
				if s.Help == "" {
					t.Errorf("setting %s has no help", s.Key)
				}
				got[s.Key] = s.Value
			}
			if !maps.Equal(got, want) {
				t.Errorf("Settings = %v, want %v", got, want)
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

// stat returns the statistic key of mw.
func stat(t *testing.T, mw middleware.Middleware, key string) int64 {
	t.Helper()
	ss, ok := mw.(middleware.StatsSource)
	if !ok {
		t.Fatal("stage does not implement StatsSource")
	}
	stats := ss.Stats()
	keys := make([]string, 0, len(stats))
	for _, st := range stats {
		keys = append(keys, st.Key)
	}
	if want := []string{"failed_auths", "auth_bans", "auth_banned_now"}; !slices.Equal(keys, want) {
		t.Fatalf("Stats keys = %v, want %v", keys, want)
	}
	for _, st := range stats {
		if st.Key == key {
			return st.Value
		}
	}
	t.Fatalf("no statistic %s", key)
	return 0
}

func failedAuths(t *testing.T, mw middleware.Middleware) int64 {
	t.Helper()
	return stat(t, mw, "failed_auths")
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
