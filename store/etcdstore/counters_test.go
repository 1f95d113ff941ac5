package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/socks5d/socks5d/builtin/quota"
	"github.com/socks5d/socks5d/core"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// Two instances add to the same counters at once: every add counts once,
// whatever the races between them.
func TestEtcdCountersConcurrentAddsSum(t *testing.T) {
	ep := startEtcd(t)
	s1, s2 := open(t, ep), open(t, ep)
	const perWorker = 25 // 2 instances × 2 goroutines × 25 = 100 adds per key
	keys := []string{"quota/q/total/alice", "quota/q/total/bob"}
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(keys))
	for _, s := range []*Store{s1, s2} {
		for range 2 {
			for _, key := range keys {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 1; i <= perWorker; i++ {
						if _, err := s.Add(key, int64(i)); err != nil {
							errs <- fmt.Errorf("Add(%s, %d): %w", key, i, err)
							return
						}
					}
				}()
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	const want = 4 * perWorker * (perWorker + 1) / 2 // 4 workers, each adding 1..25
	for _, s := range []*Store{s1, s2} {
		for _, key := range keys {
			if got, err := s.Add(key, 0); err != nil || got != want {
				t.Errorf("Add(%s, 0) = %d, %v; want %d", key, got, err, want)
			}
		}
	}
	m, err := s2.Counters("quota/q/")
	if err != nil || len(m) != 2 || m[keys[0]] != want || m[keys[1]] != want {
		t.Fatalf("Counters = %v, %v; want both keys at %d", m, err, want)
	}
	t.Logf("%d adds on 2 keys from 2 instances: totals %d and %d; lost races retried: %d + %d",
		4*perWorker*len(keys), m[keys[0]], m[keys[1]], s1.counterRetries.Load(), s2.counterRetries.Load())
}

// Counters and Delete act on a prefix of the counter keys; counters sit
// beside the state without being taken for it; a value that is not a
// decimal integer is refused naming its key.
func TestEtcdCountersPrefixDeleteAndBadValue(t *testing.T) {
	ep := startEtcd(t)
	s := open(t, ep)
	for key, d := range map[string]int64{"quota/a/day:1/alice": 5, "quota/a/day:1/bob": 7, "quota/a/day:2/alice": 11, "quota/b/day:1/alice": 13} {
		if got, err := s.Add(key, d); err != nil || got != d {
			t.Fatalf("Add(%s, %d) = %d, %v", key, d, got, err)
		}
	}
	if got, err := s.Add("quota/a/day:1/alice", -5); err != nil || got != 0 {
		t.Fatalf("Add(-5) = %d, %v; want 0", got, err)
	}
	m, err := s.Counters("quota/a/day:1/")
	if err != nil || len(m) != 2 || m["quota/a/day:1/bob"] != 7 || m["quota/a/day:1/alice"] != 0 {
		t.Fatalf("Counters(quota/a/day:1/) = %v, %v", m, err)
	}
	// The counters are under the prefix, yet the state loads: they are
	// not state keys (nor foreign ones).
	if _, _, err := s.LoadRevision(); err != nil {
		t.Fatalf("LoadRevision beside counters: %v", err)
	}
	if err := s.Delete("quota/a/day:1/"); err != nil {
		t.Fatal(err)
	}
	m, err = s.Counters("quota/")
	if err != nil || len(m) != 2 || m["quota/a/day:2/alice"] != 11 || m["quota/b/day:1/alice"] != 13 {
		t.Fatalf("after Delete(quota/a/day:1/): %v, %v", m, err)
	}
	if err := s.Delete("no/such/"); err != nil {
		t.Fatalf("Delete of nothing: %v", err)
	}

	cli, err := s.client()
	if err != nil {
		t.Fatal(err)
	}
	const bad = "/fleet/counters/quota/b/day:1/mallory"
	if _, err := cli.Put(context.Background(), bad, "12 KiB"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Counters("quota/b/"); !errors.Is(err, core.ErrStoreValue) || !strings.Contains(err.Error(), bad) {
		t.Errorf("Counters over a bad value = %v, want ErrStoreValue naming %s", err, bad)
	}
	if _, err := s.Add("quota/b/day:1/mallory", 1); !errors.Is(err, core.ErrStoreValue) || !strings.Contains(err.Error(), bad) {
		t.Errorf("Add to a bad value = %v, want ErrStoreValue naming %s", err, bad)
	}
	resp, err := cli.Get(context.Background(), bad)
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "12 KiB" {
		t.Errorf("the bad value was changed: %v, %v", resp, err)
	}
	if _, err := cli.Put(context.Background(), s.counterKey("max"), "9223372036854775807"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add("max", 1); !errors.Is(err, core.ErrStoreValue) || !strings.Contains(err.Error(), "overflow") {
		t.Errorf("Add past MaxInt64 = %v, want an overflow error", err)
	}
}

// Counter writes reach every watcher but are not state changes: the watch
// delivers no state event for them.
func TestEtcdCountersNotDeliveredAsState(t *testing.T) {
	ep := startEtcd(t)
	s1, s2 := open(t, ep), open(t, ep)
	_, rev, err := s2.LoadRevision()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var states []*core.State
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s2.Watch(ctx, rev, func(ev core.StoreEvent) {
			if ev.State != nil {
				mu.Lock()
				states = append(states, ev.State)
				mu.Unlock()
			}
		})
		close(done)
	}()
	defer func() { cancel(); <-done }()
	seen := func(n int) bool { mu.Lock(); defer mu.Unlock(); return len(states) >= n }
	change := func(linger string) {
		t.Helper()
		st, base, err := s1.LoadRevision()
		if err != nil {
			t.Fatal(err)
		}
		next := core.NewState()
		next.Settings["socks.linger"] = linger
		if _, err := s1.SaveChange(st, next, base); err != nil {
			t.Fatal(err)
		}
	}
	// A first change: once it is delivered, the watch follows events.
	change("7s")
	waitFor(t, "the first setting at the other instance", func() bool { return seen(1) })
	for i := range 5 {
		if _, err := s1.Add("quota/q/total/alice", int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	// A change after the counters: once it is delivered, the counter
	// events before it have been handled too.
	change("8s")
	waitFor(t, "the second setting at the other instance", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(states) > 0 && states[len(states)-1].Settings["socks.linger"] == "8s"
	})
	mu.Lock()
	defer mu.Unlock()
	if len(states) != 2 {
		t.Errorf("the watch delivered %d states for 2 changes with 5 counter adds between them, want 2", len(states))
	}
	if s2.badValues.Load() != 0 {
		t.Errorf("the watch refused a state %d times", s2.badValues.Load())
	}
}

// Two quota stages on two instances sharing one etcd count against one
// total: each saves its bytes and the fleet's sum is what a third sees.
func TestEtcdQuotaSharedByTwoInstances(t *testing.T) {
	ep := startEtcd(t)
	cfg := map[string]any{"per_user": "1MiB", "period": "total"}
	stage := func(s *Store) (middleware.Middleware, middleware.Params) {
		p := mwtest.Params("quota", cfg)
		p.Counters = s
		mw := mwtest.New(t, quota.Type, p)
		t.Cleanup(func() { p.Shared.Close() })
		return mw, p
	}
	mw1, p1 := stage(open(t, ep))
	mw2, p2 := stage(open(t, ep))
	const each = 600 << 10 // 2 × 600 KiB: over 1 MiB together, under it alone
	for i, mw := range []middleware.Middleware{mw1, mw2} {
		if err := quotaSession(t, mw, "alice", each); err != nil {
			t.Fatalf("instance %d: alice's 600 KiB: %v", i+1, err)
		}
	}
	// Stopping saves the counts (the shared pool closes the stage's state).
	for _, p := range []middleware.Params{p1, p2} {
		if err := p.Shared.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s3 := open(t, ep)
	if got, err := s3.Add("quota/quota/total/alice", 0); err != nil || got != 2*each {
		t.Fatalf("the fleet's count for alice = %d, %v; want %d", got, err, 2*each)
	}
	mw3, _ := stage(s3)
	err := quotaSession(t, mw3, "alice", 1)
	if !errors.Is(err, quota.ErrQuotaReached) {
		t.Fatalf("a third instance let alice in at 1200 KiB of 1 MiB: %v", err)
	}
	q := mw3.(middleware.QuotaKeeper).Quotas()
	if len(q) != 1 || q[0].User != "alice" || q[0].Used != 2*each {
		t.Errorf("QUOTA on the third instance = %+v, want alice at %d", q, 2*each)
	}
	t.Logf("alice moved 600 KiB through each of two instances; the third sees %d bytes and refuses her", q[0].Used)
}

// quotaSession runs one session of user through the quota stage mw with
// a terminal that acts as the engine: it asks the admissions, then sends
// n bytes to the client through the (wrapped) client connection.
func quotaSession(t *testing.T, mw middleware.Middleware, user string, n int) error {
	s, client := mwtest.Session(t)
	read := make(chan struct{})
	go func() { io.Copy(io.Discard, client); close(read) }()
	term := middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		s.User, s.AuthState, s.Command = user, middleware.AuthOK, middleware.CmdConnect
		for _, a := range s.Admissions {
			if err := a.Admit(ctx, s); err != nil {
				return err
			}
		}
		s.ReplySent = true
		_, err := s.Conn.Write(make([]byte, n))
		return err
	})
	err := mw.Wrap(term).ServeConn(context.Background(), s)
	client.Close()
	s.Conn.Close()
	<-read
	return err
}
