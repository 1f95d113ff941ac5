package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks5d/socks5d/core"
)

// startEtcd starts a single etcd on loopback ports with its data in a
// temporary directory and returns its client address. Without etcd the
// test skips, saying so, and fails under CI=true.
func startEtcd(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"etcd", "etcdctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("this test needs %s, which is not installed (Debian: apt-get install etcd-server etcd-client)", tool)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	client, peer := freePort(t), freePort(t)
	dir := t.TempDir()
	cmd := exec.Command("etcd", "--name", "t", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
		"--initial-cluster", "t=http://"+peer, "--log-level", "error", "--logger", "zap")
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	for i := 0; ; i++ {
		if exec.Command("etcdctl", "--endpoints", client, "endpoint", "health").Run() == nil {
			return client
		}
		if i == 100 {
			b, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
			t.Fatalf("etcd did not start within 10s:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort returns a loopback address nothing listens on (now).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func open(t *testing.T, endpoint string, edit ...func(*core.StoreConfig)) *Store {
	t.Helper()
	cfg := core.StoreConfig{Kind: "etcd", Endpoints: []string{endpoint}, Prefix: "/fleet/", DialTimeout: 2 * time.Second}
	for _, e := range edit {
		e(&cfg)
	}
	s, err := Open(cfg, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitFor polls cond for at most 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within 10s", what)
}

// Two instances: a change based on a stale revision is refused and
// nothing of it is written; the watch brings the other's change.
func TestEtcdChangeConflictAndWatch(t *testing.T) {
	ep := startEtcd(t)
	s1, s2 := open(t, ep), open(t, ep)
	st1, rev1, err := s1.LoadRevision()
	if err != nil {
		t.Fatal(err)
	}
	st2, rev2, err := s2.LoadRevision()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []core.StoreEvent
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s2.Watch(ctx, rev2, func(ev core.StoreEvent) { mu.Lock(); seen = append(seen, ev); mu.Unlock() })
		close(done)
	}()
	defer func() { cancel(); <-done }()

	next1 := core.NewState()
	next1.Users["alice"] = core.StateUser{Role: "basic", Hash: testHash}
	next1.Settings["socks.linger"] = "7s"
	w1, err := s1.SaveChange(st1, next1, rev1)
	if err != nil {
		t.Fatal(err)
	}
	next2 := core.NewState()
	next2.Settings["socks.idle_timeout"] = "1m0s"
	if _, err := s2.SaveChange(st2, next2, rev2); !errors.Is(err, core.ErrStoreConflict) || !strings.Contains(err.Error(), "retry") {
		t.Fatalf("a change on a stale base = %v, want ErrStoreConflict saying retry", err)
	}
	waitFor(t, "s2's watch to bring s1's change", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range seen {
			if ev.State != nil && ev.Revision == w1 {
				return ev.State.Users["alice"].Hash == testHash && ev.State.Settings["socks.linger"] == "7s" && ev.State.Settings["socks.idle_timeout"] == nil
			}
		}
		return false
	})
	// Retried on the new base, it goes through.
	if _, err := s2.SaveChange(next1, merge(next1, next2), w1); err != nil {
		t.Fatalf("the retried change: %v", err)
	}
	got, _, err := open(t, ep).LoadRevision()
	if err != nil || got.Settings["socks.idle_timeout"] != "1m0s" || got.Settings["socks.linger"] != "7s" {
		t.Fatalf("the store after both changes: %+v, %v", got.Settings, err)
	}
	// A fleet-wide KILL USER reaches the watcher.
	if err := s1.KillUser("alice"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the KILL USER event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range seen {
			if ev.KillUser == "alice" {
				return true
			}
		}
		return false
	})
}

func merge(a, b *core.State) *core.State {
	out := core.NewState()
	for k, v := range a.Users {
		out.Users[k] = v
	}
	for _, m := range []*core.State{a, b} {
		for k, v := range m.Settings {
			out.Settings[k] = v
		}
	}
	return out
}

// A ban posted by one instance is seen by another until its lease ends.
func TestEtcdBansShared(t *testing.T) {
	ep := startEtcd(t)
	s1, s2 := open(t, ep), open(t, ep)
	_, rev, err := s2.LoadRevision()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s2.Watch(ctx, rev, func(core.StoreEvent) {}); close(done) }()
	defer func() { cancel(); <-done }()
	attacker := netip.MustParseAddr("127.0.0.9")
	s1.Ban(netip.PrefixFrom(attacker, 32), 2*time.Second)
	waitFor(t, "the ban at the other instance", func() bool { _, b := s2.Banned(attacker); return b })
	if _, b := s2.Banned(netip.MustParseAddr("127.0.0.10")); b {
		t.Error("another address is banned too")
	}
	waitFor(t, "the ban to end", func() bool { _, b := s2.Banned(attacker); return !b })
}

// Wrong credentials are named as such; a foreign key under the prefix
// (a wrong prefix) is refused naming it.
func TestEtcdBadCredentialsAndWrongPrefix(t *testing.T) {
	ep := startEtcd(t)
	for _, args := range [][]string{
		{"user", "add", "root:root-pw"},
		{"user", "add", "socks5d:good-pw"},
		{"role", "add", "fleet"},
		{"role", "grant-permission", "fleet", "--prefix=true", "readwrite", "/"},
		{"user", "grant-role", "socks5d", "fleet"},
		{"put", "/other/app/config", "x"},
		{"auth", "enable"},
	} {
		if out, err := exec.Command("etcdctl", append([]string{"--endpoints", ep, "--user", "root:root-pw"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("etcdctl %v: %v\n%s", args, err, out)
		}
	}
	bad := open(t, ep, func(c *core.StoreConfig) { c.Username, c.Password = "socks5d", "wrong-pw" })
	_, _, err := bad.LoadRevision()
	if !errors.Is(err, ErrCredentials) || strings.Contains(err.Error(), "wrong-pw") {
		t.Fatalf("wrong password: %v (want an error naming the credentials, not the password)", err)
	}
	good := open(t, ep, func(c *core.StoreConfig) { c.Username, c.Password = "socks5d", "good-pw" })
	if _, _, err := good.LoadRevision(); err != nil {
		t.Fatalf("right password: %v", err)
	}
	wrong := open(t, ep, func(c *core.StoreConfig) { c.Username, c.Password, c.Prefix = "socks5d", "good-pw", "/other/" })
	if _, _, err := wrong.LoadRevision(); !errors.Is(err, ErrForeignKey) || !strings.Contains(err.Error(), "/other/app/config") {
		t.Fatalf("a prefix holding another application's keys: %v", err)
	}
}
