package core

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/socks5d/socks5d/middleware"
)

// testLife records when the engine activates and cleans it up, in a log
// kept in the shared pool: "activate v" or "cleanup v", v being its
// setting, and on activation whether the live snapshot already held it.
type testLife struct {
	v   string
	log *lifeLog
}

// lifeLog is test.life's record of events.
type lifeLog struct {
	mu     sync.Mutex
	events []string
	rt     *Runtime
}

func (l *lifeLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
}

// take returns the events since the last take.
func (l *lifeLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

func init() {
	middleware.Register(middleware.Info{Type: "test.life", New: newTestLife})
}

func newTestLife(p middleware.Params) (middleware.Middleware, error) {
	var cfg struct {
		V string `json:"v"`
	}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.V == "bad" {
		return nil, fmt.Errorf("%w: bad", middleware.ErrBadValue)
	}
	lifeAlive.Add(1)
	return &testLife{v: cfg.V, log: middleware.Get(p.Shared, "test.life.log", func() *lifeLog { return new(lifeLog) })}, nil
}

func (l *testLife) Wrap(next middleware.Handler) middleware.Handler { return next }

func (l *testLife) Settings() []middleware.Setting {
	return []middleware.Setting{{Key: "v", Value: l.v}}
}

func (l *testLife) Activate() {
	live := "not live"
	if rt := l.log.rt; rt != nil && slices.ContainsFunc(rt.Snapshot().Stages, func(st Stage) bool { return st.Middleware == l }) {
		live = "live"
	}
	l.log.add("activate %s (%s)", l.v, live)
}

func (l *testLife) Cleanup() {
	lifeAlive.Add(-1)
	l.log.add("cleanup %s", l.v)
}

// lifeAlive counts test.life stages built and not yet cleaned up.
var lifeAlive atomic.Int64

// TestStageLifecycle: the engine activates a snapshot's stages once it is
// live and cleans up those it replaced; the stages of a change that fails
// anywhere (the draft, a stage's New, the chain's checks, saving) are
// cleaned up and never activated, and the live ones hear nothing.
func TestStageLifecycle(t *testing.T) {
	rt, err := NewRuntime(testConfig(stage("test.auth"), stage("test.life", "v", "1")), nil)
	if err != nil {
		t.Fatal(err)
	}
	log := middleware.Get(rt.shared, "test.life.log", func() *lifeLog { return new(lifeLog) })
	check := func(step string, want ...string) {
		t.Helper()
		if got := log.take(); !slices.Equal(got, want) {
			t.Errorf("%s: events %q, want %q", step, got, want)
		}
	}
	check("NewRuntime", "activate 1 (not live)") // NewRuntime stores before it returns; rt unknown to the stage yet
	log.rt = rt

	if err := rt.Update(func(d *Draft) error { d.Chain[1].Config["v"] = "2"; return nil }); err != nil {
		t.Fatal(err)
	}
	check("Update", "activate 2 (live)", "cleanup 1")

	live := rt.Snapshot()
	boom := errors.New("boom")
	if err := rt.Update(func(d *Draft) error { return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	check("Update refused by its function") // nothing built
	if err := rt.Update(func(d *Draft) error {
		d.Chain[1].Config["v"] = "3"
		d.Chain = append(d.Chain, stage("nope"))
		return nil
	}); err == nil {
		t.Fatal("an unknown stage type was accepted")
	}
	check("Update with an unknown stage", "cleanup 3")
	if err := rt.Update(func(d *Draft) error {
		d.Chain[1].Config["v"] = "4"
		d.Chain = append(d.Chain, stage("test.life", "v", "bad"))
		d.Chain[2].Name = "life2"
		return nil
	}); !errors.Is(err, middleware.ErrBadValue) {
		t.Fatalf("a stage's refusal: %v", err)
	}
	check("Update refused by a later stage's New", "cleanup 4")
	if err := rt.Update(func(d *Draft) error {
		d.Chain[1].Config["v"] = "5"
		d.users = newUsers()
		return nil
	}); !errors.Is(err, ErrNobodyCanConnect) {
		t.Fatalf("no users: %v", err)
	}
	check("Update refused by the chain's checks", "cleanup 5")
	if rt.Snapshot() != live {
		t.Fatal("a failed update replaced the snapshot")
	}

	if _, err := rt.UseStore(failingStore{}); err != nil {
		t.Fatal(err)
	}
	check("UseStore", "activate 2 (live)", "cleanup 2")
	live = rt.Snapshot()
	if err := rt.Admin().Set("test.life.v", "six"); err == nil {
		t.Fatal("a change that could not be saved was made")
	}
	check("Set that cannot be saved", "cleanup six")
	if rt.Snapshot() != live {
		t.Fatal("an unsaved change replaced the snapshot")
	}

	if err := rt.Reload(testConfig(stage("test.auth"), stage("test.life", "v", "7"))); err != nil {
		t.Fatal(err)
	}
	check("Reload", "activate 7 (live)", "cleanup 2")
	if err := rt.Reload(testConfig(stage("test.auth"), stage("test.life", "v", "8"), stage("nope"))); err == nil {
		t.Fatal("a bad reload was applied")
	}
	check("failed Reload", "cleanup 8")

	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	check("Close", "cleanup 7")
}

// TestFailedStartCleansUp: a configuration that fails to compile cleans up
// the stages it built.
func TestFailedStartCleansUp(t *testing.T) {
	before := lifeAlive.Load()
	if _, err := NewRuntime(testConfig(stage("test.life", "v", "1"), stage("nope")), nil); err == nil {
		t.Fatal("an unknown stage type was accepted")
	}
	if got := lifeAlive.Load() - before; got != 0 {
		t.Errorf("%d stages built by a failed start were not cleaned up", got)
	}
}
