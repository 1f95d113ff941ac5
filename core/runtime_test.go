package core

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/bcrypt"

	"github.com/socks5d/socks5d/middleware"
)

func TestNewRuntimeErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  *Config
		want string
	}{
		{"unknown stage type", testConfig(stage("nope")), `unknown stage type "nope" (known types:`},
		{"stage rejects a key", testConfig(stage("test.auth", "anonymus", true)), "chain[0] (test.auth): middleware: unknown key \"anonymus\" (known: anonymous)"},
		{"stage rejects a value", testConfig(stage("test.iosize", "size", "big")), "chain[0] (test.iosize)"},
		{"order constraint", testConfig(stage("test.wrap"), stage("test.first")), `chain[1] (test.first): must come before every "test.wrap" stage`},
		{"nobody can connect", &Config{SOCKS: testConfig().SOCKS, Chain: []StageConfig{stage("test.auth")}}, "nobody could use the proxy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRuntime(tt.cfg, hclog.NewNullLogger())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := NewRuntime(testConfig(stage("test.first"), stage("test.wrap")), nil); err != nil {
		t.Fatalf("test.first before test.wrap: %v", err)
	}
	// Anonymous access without users is a usable proxy.
	cfg := &Config{SOCKS: testConfig().SOCKS, Chain: []StageConfig{stage("test.auth", "anonymous", true)}}
	if _, err := NewRuntime(cfg, nil); err != nil {
		t.Fatal(err)
	}
}

// TestStartupErrorsWrap: a stage's error at start-up keeps its sentinels,
// as it does when the same value arrives later through Set.
func TestStartupErrorsWrap(t *testing.T) {
	_, err := NewRuntime(testConfig(stage("test.auth", "anonymus", true)), nil)
	if !errors.Is(err, ErrConfig) || !errors.Is(err, middleware.ErrUnknownKey) {
		t.Errorf("unknown key at start-up: err = %v, want ErrConfig and middleware.ErrUnknownKey", err)
	}
	_, err = NewRuntime(testConfig(stage("test.auth"), stage("test.iosize", "size", 0)), nil)
	if !errors.Is(err, ErrConfig) || !errors.Is(err, middleware.ErrBadValue) {
		t.Errorf("bad value at start-up: err = %v, want ErrConfig and middleware.ErrBadValue", err)
	}
	rt, err := NewRuntime(testConfig(stage("test.auth"), stage("test.iosize")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().Set("test.iosize.size", "0"); !errors.Is(err, middleware.ErrBadValue) {
		t.Errorf("bad value through Set: err = %v, want middleware.ErrBadValue", err)
	}
}

func TestFailedUpdateChangesNothing(t *testing.T) {
	rt, err := NewRuntime(testConfig(stage("test.auth"), stage("test.iosize", "size", 5000)), nil)
	if err != nil {
		t.Fatal(err)
	}
	before := rt.Snapshot()
	boom := errors.New("boom")
	if err := rt.Update(func(d *Draft) error {
		_ = d.AddUser("carol", "pw", middleware.RoleBasic)
		d.Chain = d.Chain[:1]
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if err := rt.Update(func(d *Draft) error {
		_ = d.AddUser("carol", "pw", middleware.RoleBasic)
		d.Chain = append(d.Chain, stage("nope"))
		return nil
	}); err == nil {
		t.Fatal("compile error not reported")
	}
	if rt.Snapshot() != before {
		t.Fatal("a failed update replaced the snapshot")
	}
	if _, ok := rt.Admin().Login("carol", "pw"); ok {
		t.Fatal("a failed update added a user")
	}
}

func TestUserChanges(t *testing.T) {
	rt, err := NewRuntime(testConfig(stage("test.auth")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().AddUser("bob", "x", middleware.RoleBasic); !errors.Is(err, ErrUserExists) {
		t.Errorf("duplicate add: %v", err)
	}
	if err := rt.Admin().AddUser("", "x", middleware.RoleBasic); !errors.Is(err, ErrBadUser) {
		t.Errorf("empty name: %v", err)
	}
	if err := rt.Admin().AddUser("carol", strings.Repeat("p", 256), middleware.RoleBasic); !errors.Is(err, ErrBadUser) {
		t.Errorf("long password: %v", err)
	}
	if err := rt.Admin().DeleteUser("nobody"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("unknown delete: %v", err)
	}
	if err := rt.Admin().DeleteUser("admin"); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("last admin: %v", err)
	}
	if err := rt.Admin().AddUser("root", "toor", middleware.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().DeleteUser("admin"); err != nil {
		t.Errorf("deleting one of two admins: %v", err)
	}
	got := fmt.Sprint(rt.Admin().Users())
	if got != "[{bob Basic} {root Admin}]" {
		t.Errorf("users = %s", got)
	}
	if role, ok := rt.Admin().Login("root", "toor"); !ok || role != middleware.RoleAdmin {
		t.Errorf("login root = %v %v", role, ok)
	}
}

func TestSetTunable(t *testing.T) {
	rt, err := NewRuntime(testConfig(stage("test.auth"), stage("test.iosize", "size", 5000)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().Set("test.iosize.size", "8000"); err != nil {
		t.Fatal(err)
	}
	if s := setting(rt, "test.iosize.size"); s != "8000" {
		t.Fatalf("settings = %+v", s)
	}
	for _, tt := range []struct{ key, value, want string }{
		{"test.iosize.size", "-1", "size must be positive"},
		{"test.iosize.size", "lots", "test.iosize"},
		{"test.iosize.colour", "1", "unknown setting"},
		{"test.auth.anonymous", "true", "unknown setting"}, // not Tunable
		{"size", "1", "unknown setting"},
		{"nostage.size", "1", "unknown setting"},
	} {
		if err := rt.Admin().Set(tt.key, tt.value); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Set(%s, %s) = %v, want %q", tt.key, tt.value, err, tt.want)
		}
	}
	if s := setting(rt, "test.iosize.size"); s != "8000" {
		t.Fatalf("a rejected Set changed the value: %+v", s)
	}
}

// A deleted user's open sessions are closed and new ones refused; a user
// added at run time can authenticate at once.
func TestDeleteUserClosesSessions(t *testing.T) {
	rt, addr := startProxy(t, testConfig(defaultTestChain()...))
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	if err := rt.Admin().AddUser("carol", "secret", middleware.RoleBasic); err != nil {
		t.Fatal(err)
	}
	c, err := socksDialer(t, addr, "carol", "secret").Dial("tcp", echo)
	if err != nil {
		t.Fatalf("new user cannot connect: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("ping"))
	readN(t, c, 4)
	if err := rt.Admin().DeleteUser("carol"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("open session survived the delete (read %d bytes)", n)
	}
	if _, err := socksDialer(t, addr, "carol", "secret").Dial("tcp", echo); err == nil {
		t.Fatal("deleted user could connect")
	}
	// Other users are untouched.
	c2, err := socksDialer(t, addr, "bob", "builder").Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
}

// Snapshots swap (IO size, users) while 32 clients relay; run with -race.
func TestSwapUnderLoad(t *testing.T) {
	rt, addr := startProxy(t, testConfig(stage("test.auth"), stage("test.wrap"), stage("test.iosize", "size", 4096)))
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	const clients, rounds = 32, 40
	var wg sync.WaitGroup
	errs := make(chan error, clients+1)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := socksDialer(t, addr, "bob", "builder").Dial("tcp", echo)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			msg := bytes.Repeat([]byte{byte(i)}, 10000)
			got := make([]byte, len(msg))
			for r := 0; r < rounds; r++ {
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("client %d round %d: %v", i, r, err)
					return
				}
			}
		}(i)
	}
	clientsDone := make(chan struct{})
	go func() { wg.Wait(); close(clientsDone) }()
	swaps := 0
swapping:
	for i := 0; i < 5000; i++ {
		select {
		case <-clientsDone:
			break swapping
		default:
		}
		if err := rt.Admin().Set("test.iosize.size", strconv.Itoa(4096+i%7*1000)); err != nil {
			t.Fatal(err)
		}
		name := "tmp" + strconv.Itoa(i)
		// A user added and removed through Update (AddUser would spend a
		// bcrypt per swap, slowing the swaps to a crawl under -race).
		if err := rt.Update(func(d *Draft) error { return d.users.setPlain(name, "pw", middleware.RoleBasic, false) }); err != nil {
			t.Fatal(err)
		}
		if err := rt.Admin().DeleteUser(name); err != nil {
			t.Fatal(err)
		}
		swaps += 3
	}
	<-clientsDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if swaps == 0 {
		t.Error("no swap happened while clients relayed")
	}
	t.Logf("%d snapshot swaps while %d clients relayed", swaps, clients)
}

func TestHashedPasswords(t *testing.T) {
	hash, err := HashPassword("hunter2")
	if err != nil {
		t.Fatal(err)
	}
	if !IsBcryptHash(hash) || IsBcryptHash("hunter2") || IsBcryptHash("$2a$10$short") {
		t.Fatal("IsBcryptHash misjudges")
	}
	if _, err := HashPassword(""); err == nil {
		t.Fatal("empty password hashed")
	}
	cfg := testConfig(stage("test.auth"))
	cfg.Users = append(cfg.Users, UserConfig{Name: "carol", Password: hash, Role: "basic"})
	rt, err := NewRuntime(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // the first check runs bcrypt, the next hit the cache
		if _, ok := rt.Admin().Login("carol", "hunter2"); !ok {
			t.Fatalf("check %d: right password refused", i)
		}
		if _, ok := rt.Admin().Login("carol", "hunter3"); ok {
			t.Fatalf("check %d: wrong password accepted", i)
		}
	}
	// A user added at run time is stored as a bcrypt hash.
	if err := rt.Admin().AddUser("dave", "pw", middleware.RoleBasic); err != nil {
		t.Fatal(err)
	}
	e := rt.Snapshot().Users.m["dave"]
	if bcrypt.CompareHashAndPassword(e.hash, []byte("pw")) != nil {
		t.Fatal("run-time user has no bcrypt hash")
	}
	if _, ok := rt.Admin().Login("dave", "pw"); !ok {
		t.Fatal("run-time user cannot log in")
	}
}

func TestReload(t *testing.T) {
	rt, err := NewRuntime(testConfig(stage("test.auth"), stage("test.iosize", "size", 5000)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().AddUser("runtime", "pw", middleware.RoleBasic); err != nil {
		t.Fatal(err)
	}
	next := testConfig(stage("test.auth"), stage("test.iosize", "size", 6000))
	next.Users = []UserConfig{{Name: "admin", Password: "newpass", Role: "admin"}} // bob removed
	next.SOCKS.ConnectTimeout = 7 * time.Second
	if err := rt.Reload(next); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rt.Admin().Users()); got != "[{admin Admin} {runtime Basic}]" {
		t.Errorf("users after reload = %s", got)
	}
	if _, ok := rt.Admin().Login("admin", "newpass"); !ok {
		t.Error("reloaded password not in force")
	}
	if s := setting(rt, "test.iosize.size"); s != "6000" || setting(rt, "socks.connect_timeout") != "7s" {
		t.Errorf("settings after reload = %+v %+v", s, rt.Snapshot().Settings)
	}
	before := rt.Snapshot()
	bad := testConfig(stage("nope"))
	if err := rt.Reload(bad); err == nil || rt.Snapshot() != before {
		t.Fatalf("a bad reload was applied (err %v)", err)
	}
}

// setting returns a live setting's value, "" when there is none.
func setting(rt *Runtime, key string) string {
	for _, s := range rt.Admin().Settings() {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

func TestEngineSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	rt, err := NewRuntime(testConfig(stage("test.auth")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.UseStore(NewFileStore(path)); err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().Set("socks.handshake_timeout", "3s"); err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().Set("socks.idle_timeout", "0s"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][2]string{{"socks.handshake_timeout", "0s"}, {"socks.linger", "-1s"}, {"socks.connect_timeout", "soon"}} {
		if err := rt.Admin().Set(bad[0], bad[1]); err == nil {
			t.Errorf("Set(%s, %s) accepted", bad[0], bad[1])
		}
	}
	if rt.Snapshot().Settings.HandshakeTimeout != 3*time.Second || setting(rt, "socks.handshake_timeout") != "3s" {
		t.Fatalf("handshake timeout = %v", rt.Snapshot().Settings.HandshakeTimeout)
	}
	// It is saved, and survives a restart.
	rt2, err := NewRuntime(testConfig(stage("test.auth")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt2.UseStore(NewFileStore(path)); err != nil {
		t.Fatal(err)
	}
	if got := setting(rt2, "socks.handshake_timeout"); got != "3s" {
		t.Fatalf("after a restart: %s", got)
	}
}

// The IO size is found by what it is for, whatever the stage is called
// (PCTP's CONFIG IO=); a chain without such a stage says so, and a stage's
// type is not a name for its settings.
func TestPurpose(t *testing.T) {
	io := stage("test.iosize", "size", 5000)
	io.Name = "buffers"
	rt, err := NewRuntime(testConfig(stage("test.auth"), io, stage("test.list", "items", []any{"a"})), nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := rt.Admin().Purpose(middleware.PurposeIOSize, "")
	if err != nil || key != "buffers.size" {
		t.Fatalf("Purpose(io-size) = %q, %v", key, err)
	}
	if err := rt.Admin().Set(key, "7000"); err != nil {
		t.Fatal(err)
	}
	if got := setting(rt, "buffers.size"); got != "7000" {
		t.Fatalf("buffers.size = %q", got)
	}
	if err := rt.Admin().Set("test.iosize.size", "7000"); !errors.Is(err, ErrUnknownSetting) {
		t.Fatalf("Set by type: %v, want ErrUnknownSetting", err)
	}
	for _, tc := range []struct {
		p     middleware.Purpose
		stage string
	}{
		{middleware.PurposePolicy, ""},          // nobody declares it
		{middleware.PurposeIOSize, "test.list"}, // that stage does not
		{middleware.PurposeIOSize, "nosuch"},    // no such stage
	} {
		if key, err := rt.Admin().Purpose(tc.p, tc.stage); !errors.Is(err, ErrNoPurpose) {
			t.Errorf("Purpose(%s, %q) = %q, %v; want ErrNoPurpose", tc.p, tc.stage, key, err)
		}
	}
}
