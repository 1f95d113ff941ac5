package auth_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/builtin/auth"
	"github.com/socks5d/socks5d/internal/testlog"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = testlog.Buffer

// backendStage builds an auth stage with the given backends and returns
// the Authenticator it installs for a client, the stage, and its log.
func backendStage(t *testing.T, cfg map[string]any, local mwtest.Users, now func() time.Time) (middleware.Authenticator, middleware.Middleware, *syncBuffer) {
	t.Helper()
	p := mwtest.Params("auth", cfg)
	if local != nil {
		p.Users = local
	}
	logs := &syncBuffer{}
	p.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})
	if now != nil {
		auth.SetCacheClock(p.Shared, p.Name, now)
	}
	mw := mwtest.New(t, auth.Type, p)
	s, _ := mwtest.Session(t)
	if err := mwtest.Serve(context.Background(), mw, &mwtest.Terminal{}, s); err != nil {
		t.Fatal(err)
	}
	return s.Auth, mw, logs
}

// backendStat returns one of the stage's STATS values.
func backendStat(t *testing.T, mw middleware.Middleware, key string) int64 {
	t.Helper()
	for _, s := range mw.(middleware.StatsSource).Stats() {
		if s.Key == key {
			return s.Value
		}
	}
	t.Fatalf("no STATS key %q", key)
	return 0
}

// mustLogin expects Authenticate to accept the password with role want.
func mustLogin(t *testing.T, a middleware.Authenticator, user, pw string, want middleware.Role) {
	t.Helper()
	role, err := a.Authenticate(context.Background(), user, pw)
	if err != nil {
		t.Fatalf("Authenticate(%s): %v", user, err)
	}
	if role != want {
		t.Fatalf("Authenticate(%s): role %v, want %v", user, role, want)
	}
}

// refused expects Authenticate to refuse, with an error wrapping each of
// wants, and returns the error.
func refused(t *testing.T, a middleware.Authenticator, user, pw string, wants ...error) error {
	t.Helper()
	_, err := a.Authenticate(context.Background(), user, pw)
	if !errors.Is(err, middleware.ErrBadCredentials) {
		t.Fatalf("Authenticate(%s) = %v, want ErrBadCredentials", user, err)
	}
	for _, w := range wants {
		if !errors.Is(err, w) {
			t.Fatalf("Authenticate(%s) = %v, want it to wrap %v", user, err, w)
		}
	}
	return err
}

func noPasswordIn(t *testing.T, what, text string, passwords ...string) {
	t.Helper()
	for _, pw := range passwords {
		if strings.Contains(text, pw) {
			t.Errorf("%s holds a password %q:\n%s", what, pw, text)
		}
	}
}

func ldapBackend(url string, kv ...any) map[string]any {
	m := map[string]any{"type": "ldap", "url": url}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func TestLDAPBindAsUser(t *testing.T) {
	dir := startSlapd(t)
	a, mw, logs := backendStage(t, map[string]any{"max_failures": 0, "backends": []any{
		ldapBackend(dir.URL, "bind_dn", "uid={user},"+testPeople, "admin_group", testAdminGroup),
	}}, nil, nil)
	if !a.Accepts(middleware.MethodPassword) {
		t.Fatal("password method not offered with a directory and no local user")
	}
	mustLogin(t, a, "alice", "alice-pw", middleware.RoleBasic)
	mustLogin(t, a, "carol", "carol-pw", middleware.RoleAdmin) // in the admin group
	refused(t, a, "alice", "wrong")
	refused(t, a, "bob", "alice-pw")
	refused(t, a, "nobody", "x")
	refused(t, a, "alice,ou=people", "alice-pw") // the name is DN-escaped
	if got := backendStat(t, mw, "auth_ldap_errors"); got != 0 {
		t.Errorf("auth_ldap_errors = %d, want 0", got)
	}
	// PCTP logins reach the directory through the stage: its ADMINs may log in.
	ls := mw.(middleware.LoginSource)
	if role, ok := ls.Login(context.Background(), "carol", "carol-pw"); !ok || role != middleware.RoleAdmin {
		t.Errorf("Login(carol) = %v, %v; want Admin", role, ok)
	}
	if _, ok := ls.Login(context.Background(), "carol", "wrong"); ok {
		t.Error("Login(carol, wrong) accepted")
	}
	noPasswordIn(t, "the log", logs.String(), "alice-pw", "carol-pw", "wrong")
}

func TestLDAPSearchThenBind(t *testing.T) {
	dir := startSlapd(t)
	local := mwtest.Users{"dave": {Password: "dave-pw", Role: middleware.RoleBasic}}
	a, mw, _ := backendStage(t, map[string]any{"max_failures": 0, "backends": []any{
		ldapBackend(dir.URL, "base_dn", testBase, "service_dn", testServiceDN, "service_password", testServicePW,
			"admin_group", testAdminGroup),
		map[string]any{"type": "local"},
	}}, local, nil)
	mustLogin(t, a, "bob", "bob-pw", middleware.RoleBasic)
	if !a.(middleware.ExternalUser).External() {
		t.Error("a directory user is not External: the engine would end the session as deleted")
	}
	mustLogin(t, a, "carol", "carol-pw", middleware.RoleAdmin)
	refused(t, a, "bob", "carol-pw")
	// Unknown to the directory: the next backend, the local list, decides.
	mustLogin(t, a, "dave", "dave-pw", middleware.RoleBasic)
	if a.(middleware.ExternalUser).External() {
		t.Error("a local user is External")
	}
	refused(t, a, "dave", "wrong")
	refused(t, a, "*", "x") // the name is filter-escaped: no wildcard match
	if got := backendStat(t, mw, "auth_ldap_checks"); got != 6 {
		t.Errorf("auth_ldap_checks = %d, want 6", got)
	}
}

func TestLDAPBadService(t *testing.T) {
	dir := startSlapd(t)
	a, mw, logs := backendStage(t, map[string]any{"max_failures": 0, "backends": []any{
		ldapBackend(dir.URL, "base_dn", testBase, "service_dn", testServiceDN, "service_password", "not-it"),
	}}, nil, nil)
	err := refused(t, a, "alice", "alice-pw", auth.ErrBackend)
	if !strings.Contains(err.Error(), "service_dn") {
		t.Errorf("error %q does not name service_dn", err)
	}
	if got := backendStat(t, mw, "auth_ldap_errors"); got != 1 {
		t.Errorf("auth_ldap_errors = %d, want 1", got)
	}
	if !strings.Contains(logs.String(), "authentication backend unavailable") || !strings.Contains(logs.String(), "service_dn") {
		t.Errorf("log does not say why:\n%s", logs)
	}
	noPasswordIn(t, "the log", logs.String()+err.Error(), "not-it", "alice-pw")
}

func TestLDAPUnreachable(t *testing.T) {
	url := "ldap://127.0.0.1:" + strconv.Itoa(freePort(t))
	a, mw, logs := backendStage(t, map[string]any{"max_failures": 0, "backends": []any{
		ldapBackend(url, "bind_dn", "uid={user},"+testPeople),
	}}, nil, nil)
	for range 3 {
		err := refused(t, a, "alice", "alice-pw", auth.ErrBackend)
		if !strings.Contains(err.Error(), url) {
			t.Errorf("error %q does not name the directory", err)
		}
	}
	if got := backendStat(t, mw, "auth_ldap_errors"); got != 3 {
		t.Errorf("auth_ldap_errors = %d, want 3", got)
	}
	if got := backendStat(t, mw, "auth_ldap_down"); got != 1 {
		t.Errorf("auth_ldap_down = %d, want 1", got)
	}
	if n := strings.Count(logs.String(), "[ERROR]"); n != 1 {
		t.Errorf("%d error lines for 3 failures within a minute, want 1:\n%s", n, logs)
	}
}

// The directory goes down: logins fail closed (on_error: deny), or fall
// through to the local list (on_error: next); it comes back: logins work.
func TestLDAPDownThenRecovery(t *testing.T) {
	dir := startSlapd(t)
	local := mwtest.Users{"alice": {Password: "local-alice", Role: middleware.RoleBasic}}
	deny, mwDeny, logs := backendStage(t, map[string]any{"max_failures": 0, "cache": "0s", "backends": []any{
		ldapBackend(dir.URL, "bind_dn", "uid={user},"+testPeople),
		map[string]any{"type": "local"},
	}}, local, nil)
	next, _, _ := backendStage(t, map[string]any{"max_failures": 0, "cache": "0s", "backends": []any{
		ldapBackend(dir.URL, "bind_dn", "uid={user},"+testPeople, "on_error", "next"),
		map[string]any{"type": "local"},
	}}, local, nil)
	mustLogin(t, deny, "alice", "alice-pw", middleware.RoleBasic)
	refused(t, deny, "alice", "local-alice") // the directory decides for alice

	dir.Stop()
	refused(t, deny, "alice", "alice-pw", auth.ErrBackend)
	refused(t, deny, "alice", "local-alice", auth.ErrBackend) // fails closed: never the next backend
	if got := backendStat(t, mwDeny, "auth_ldap_down"); got != 1 {
		t.Errorf("auth_ldap_down = %d while down, want 1", got)
	}
	mustLogin(t, next, "alice", "local-alice", middleware.RoleBasic) // on_error: next
	refused(t, next, "alice", "alice-pw")

	dir.Start()
	mustLogin(t, deny, "alice", "alice-pw", middleware.RoleBasic)
	if got := backendStat(t, mwDeny, "auth_ldap_down"); got != 0 {
		t.Errorf("auth_ldap_down = %d after recovery, want 0", got)
	}
	if got := backendStat(t, mwDeny, "auth_ldap_errors"); got != 2 {
		t.Errorf("auth_ldap_errors = %d, want 2", got)
	}
	if !strings.Contains(logs.String(), "authentication backend answers again") {
		t.Errorf("recovery not logged:\n%s", logs)
	}
}

// A password the directory accepted is accepted from the cache while it
// lasts, even with the directory down; after it expires the directory is
// asked again. A wrong password is never answered from the cache.
func TestLDAPCacheExpiry(t *testing.T) {
	dir := startSlapd(t)
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a, mw, _ := backendStage(t, map[string]any{"max_failures": 0, "cache": "5m", "backends": []any{
		ldapBackend(dir.URL, "bind_dn", "uid={user},"+testPeople, "admin_group", testAdminGroup),
	}}, nil, clock)
	mustLogin(t, a, "carol", "carol-pw", middleware.RoleAdmin)
	if got := backendStat(t, mw, "auth_ldap_checks"); got != 1 {
		t.Fatalf("auth_ldap_checks = %d, want 1", got)
	}
	dir.Stop()
	mustLogin(t, a, "carol", "carol-pw", middleware.RoleAdmin) // from the cache
	refused(t, a, "carol", "carol-pw2", auth.ErrBackend)       // not cached: asks, the directory is down
	if got := backendStat(t, mw, "auth_cache_hits"); got != 1 {
		t.Errorf("auth_cache_hits = %d, want 1", got)
	}
	mu.Lock()
	now = now.Add(5 * time.Minute)
	mu.Unlock()
	refused(t, a, "carol", "carol-pw", auth.ErrBackend) // expired: asks again
	dir.Start()
	mustLogin(t, a, "carol", "carol-pw", middleware.RoleAdmin)
	if got := backendStat(t, mw, "auth_ldap_checks"); got != 2 {
		t.Errorf("auth_ldap_checks = %d, want 2", got)
	}
}

func TestBackendConfig(t *testing.T) {
	tests := []struct {
		name   string
		b      any
		errHas string
	}{
		{"unknown type", map[string]any{"type": "radius"}, `"radius" is not local, ldap or http`},
		{"unknown key", map[string]any{"type": "ldap", "uri": "ldap://127.0.0.1"}, `unknown field "uri"`},
		{"ldap without url", ldapBackend("", "bind_dn", "uid={user},dc=x"), `key "url"`},
		{"ldap bad scheme", ldapBackend("http://127.0.0.1", "bind_dn", "uid={user},dc=x"), `key "url"`},
		{"ldap neither", ldapBackend("ldap://127.0.0.1"), `key "base_dn"`},
		{"ldap both", ldapBackend("ldap://127.0.0.1", "bind_dn", "uid={user},dc=x", "base_dn", "dc=x"), `key "bind_dn"`},
		{"ldap template without user", ldapBackend("ldap://127.0.0.1", "bind_dn", "uid=alice,dc=x"), `{user}`},
		{"ldap bad filter", ldapBackend("ldap://127.0.0.1", "base_dn", "dc=x", "filter", "(uid={user}"), `key "filter"`},
		{"ldap bad dn", ldapBackend("ldap://127.0.0.1", "base_dn", "not a dn"), `key "base_dn"`},
		{"ldap lone service_dn", ldapBackend("ldap://127.0.0.1", "base_dn", "dc=x", "service_dn", "cn=svc,dc=x"), `key "service_password"`},
		{"ldaps and start_tls", ldapBackend("ldaps://127.0.0.1", "bind_dn", "uid={user},dc=x", "start_tls", true), `key "start_tls"`},
		{"bad on_error", ldapBackend("ldap://127.0.0.1", "bind_dn", "uid={user},dc=x", "on_error", "allow"), `"on_error"`},
		{"hook bad url", map[string]any{"type": "http", "url": "ftp://127.0.0.1/x"}, `key "url"`},
		{"hook password in url", map[string]any{"type": "http", "url": "http://u:p@127.0.0.1/x"}, `no user or password`},
		{"hook with ldap keys", map[string]any{"type": "http", "url": "http://127.0.0.1/x", "base_dn": "dc=x"}, `ldap keys`},
		{"local with keys", map[string]any{"type": "local", "url": "http://127.0.0.1/x"}, `no other keys`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mwtest.Build(t, auth.Type, mwtest.Params("auth", map[string]any{"backends": []any{tt.b}}))
			if !errors.Is(err, middleware.ErrBadValue) || !strings.Contains(err.Error(), tt.errHas) || !strings.Contains(err.Error(), "backends") {
				t.Fatalf("err = %v, want ErrBadValue naming backends and %s", err, tt.errHas)
			}
		})
	}
	_, err := mwtest.Build(t, auth.Type, mwtest.Params("auth", map[string]any{"backends": []any{
		ldapBackend("ldap://127.0.0.1", "bind_dn", "uid={user},dc=x"),
		ldapBackend("ldap://127.0.0.1", "bind_dn", "cn={user},dc=x"),
	}}))
	if !errors.Is(err, middleware.ErrBadValue) || !strings.Contains(err.Error(), "used twice") {
		t.Fatalf("two unnamed ldap backends: err = %v", err)
	}
}
