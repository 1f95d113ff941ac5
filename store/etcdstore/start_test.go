package etcdstore

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/socks5d/socks5d/core"
)

// etcd unreachable at start: refused without a copy in data_dir, served
// from the copy when there is one.
func TestStartWithEtcdDown(t *testing.T) {
	t.Run("no credentials", func(t *testing.T) { startWithEtcdDown(t, "", "") })
	t.Run("credentials", func(t *testing.T) { startWithEtcdDown(t, "socks5d", "pw") })
}

func startWithEtcdDown(t *testing.T, user, pass string) {
	dir := t.TempDir()
	cfg := core.StoreConfig{Kind: "etcd", Endpoints: []string{freePort(t)}, Prefix: "/socks5d/", DialTimeout: 300 * time.Millisecond, Username: user, Password: pass}
	s, err := Open(cfg, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.LoadRevision(); !errors.Is(err, ErrNoCopy) || !errors.Is(err, core.ErrStoreUnavailable) {
		t.Fatalf("LoadRevision with etcd down and no copy = %v, want ErrNoCopy and ErrStoreUnavailable", err)
	}
	saved := core.NewState()
	saved.Users["alice"] = core.StateUser{Role: "basic", Hash: testHash}
	if err := core.NewFileStore(filepath.Join(dir, CacheFile)).Save(saved); err != nil {
		t.Fatal(err)
	}
	st, rev, err := s.LoadRevision()
	if err != nil || rev != 0 || st.Users["alice"].Hash != testHash {
		t.Fatalf("LoadRevision from the copy = %+v, %d, %v", st, rev, err)
	}
	// Changes are refused, naming etcd, until it answers.
	next := core.NewState()
	if _, err := s.SaveChange(st, next, 0); !errors.Is(err, core.ErrStoreUnavailable) {
		t.Fatalf("SaveChange while serving the copy = %v", err)
	}
	// Counters fail the same way: the quota stage keeps its counts in
	// memory and tries again at its next save.
	if _, err := s.Add("quota/q/total/alice", 1); !errors.Is(err, core.ErrStoreUnavailable) {
		t.Errorf("Add with etcd down = %v, want ErrStoreUnavailable", err)
	}
	if _, err := s.Counters("quota/"); !errors.Is(err, core.ErrStoreUnavailable) {
		t.Errorf("Counters with etcd down = %v, want ErrStoreUnavailable", err)
	}
	if err := s.Delete("quota/"); !errors.Is(err, core.ErrStoreUnavailable) {
		t.Errorf("Delete with etcd down = %v, want ErrStoreUnavailable", err)
	}
	if got := s.Stats(); got[0].Key != "store_connected" || got[0].Value != 0 {
		t.Errorf("Stats = %v, want store_connected 0 first", got)
	}
}
